"""Playground: type sentences and see what a trained run predicts; compare two runs; inspect their mistakes.

The model is loaded (and cached) through `bert_lab.engine.predict`, imported only here and only when predicting: the
other pages never load torch.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from bert_lab.core.metrics import METRICS
from bert_lab.figures import run_charts
from bert_lab.runs import takehome
from bert_lab.runs.describe import badge, run_label
from bert_lab.runs.records import Run
from bert_lab.runs.workshop import Settings
from bert_lab.teaching.prediction_diff import DiffError, compare_predictions, read_report
from lab_ui import page

lab = page.start()

MAX_SENTENCES = 50
TEXT_AND_CONFIDENCE = {  # the columns of the predictions and of the mistakes tables
    "text": st.column_config.TextColumn(width=280),
    "confidence": st.column_config.ProgressColumn(
        "confidence", min_value=0.0, max_value=1.0, format="percent", width=110
    ),
}
EXAMPLES = {
    "rotten_tomatoes": [
        "A warm, funny and beautifully acted film.",
        "Two hours of my life I will never get back.",
        "The plot is thin, but the performances carry it.",
    ],
    "sms_spam": [
        "WINNER!! Claim your free prize now: text YES to 80888.",
        "Are we still on for lunch tomorrow?",
        "Your account is locked, call 0800 123 456 to verify.",
    ],
    "trec": ["Who wrote Hamlet?", "How far is the moon from the Earth?", "What does NASA stand for?"],
    "bbc_news": [
        "The central bank raised interest rates by half a point.",
        "The striker scored twice in the final.",
        "A new smartphone with a foldable screen goes on sale next week.",
    ],
}


@st.cache_resource(max_entries=4, show_spinner=False)
def load_classifier(model_dir: str, stamp: float, max_length: int) -> Any:
    from bert_lab.engine.predict import load_classifier as load  # torch and transformers: only on this page, only now

    return load(model_dir, max_length=max_length)


@st.cache_data(max_entries=32, show_spinner=False)
def predict(model_dir: str, stamp: float, max_length: int, sentences: tuple[str, ...]) -> tuple[pd.DataFrame, list]:
    """Predictions, cached: toggling the comparison or picking another run does not recompute them."""
    classifier = load_classifier(model_dir, stamp, max_length)
    return classifier.predict(list(sentences)), list(classifier.label_names)


def model_dir(run: Run) -> Path:
    return lab.data.folder_of(run).model


def describe(run: Run) -> str:
    c = run.config
    return (
        f"{badge(run.status)} · {c.get('model')} on "
        f"{Path(str(c.get('dataset'))).name} · lr {c.get('lr', 0):.2g} · {c.get('optimizer')}"
    )


def render_predictions(run: Run, sentences: list[str]) -> pd.DataFrame:
    st.markdown(f"**{page.md(run_label(run))}**")
    st.caption(page.md(describe(run)))
    folder = model_dir(run)
    with st.spinner("Loading the model and predicting…"):
        result, label_names = predict(
            str(folder),
            (folder / "config.json").stat().st_mtime,
            int(run.config.get("max_length", 128)),
            tuple(sentences),
        )
    st.plotly_chart(
        run_charts.probabilities_figure(result, label_names), key=f"probs_{run.id}", config={"displayModeBar": False}
    )
    st.dataframe(
        result[["text", "predicted", "confidence"]],
        hide_index=True,
        width="stretch",
        column_config=TEXT_AND_CONFIDENCE,
    )
    return result


def render_eval_report(run: Run) -> None:
    st.markdown(f"**{page.md(run_label(run))}**")
    path = lab.data.folder_of(run).eval_report
    if not path.exists():
        st.info("This run has no evaluation report (it is written when a run ends).")
        return
    report = json.loads(path.read_text())
    a, b, c = st.columns(3)
    a.metric(METRICS["accuracy"].label, f"{report.get('accuracy', 0):.3f}")
    b.metric(METRICS["f1"].label, f"{report.get('f1', 0):.3f}")
    c.metric(f"Mistakes (of {report.get('eval_size', 0):,})", f"{report.get('misclassified_count', 0):,}")
    st.plotly_chart(
        run_charts.confusion_figure(
            report["confusion"], report["label_names"], title=f"Confusion matrix at step {report.get('step', '?')}"
        ),
        key=f"confusion_{run.id}",
        config={"displayModeBar": False},
    )
    st.caption("Rows: the true label; columns: what the model said. The diagonal is right; the rest are mistakes.")
    wrong = pd.DataFrame(report.get("misclassified", []), columns=["text", "label", "predicted", "confidence"])
    if wrong.empty:
        st.success("No mistakes on the evaluation set.")
        return
    st.dataframe(
        wrong.head(25).rename(columns={"label": "true label"}),
        hide_index=True,
        width="stretch",
        column_config=TEXT_AND_CONFIDENCE,
    )
    st.caption(
        f"Mistakes, most confident first (showing {min(25, len(wrong))} of "
        f"{report.get('misclassified_count', len(wrong))}): often ambiguous texts or wrong labels."
    )


def render_prediction_diff(a: Run, b: Run) -> None:
    """Where the two runs disagree on their evaluation set, and whether the gap is more than chance (McNemar)."""
    st.subheader("Example by example: is the difference real?")
    try:
        diff = compare_predictions(
            read_report(lab.data.folder_of(a).eval_report), read_report(lab.data.folder_of(b).eval_report)
        )
    except DiffError as exc:
        st.info(page.md(exc))
        return
    (st.success if diff.real else st.warning)(page.md(diff.words(run_label(a), run_label(b))))
    counts = pd.DataFrame(
        {
            "": [f"{run_label(a)} right", f"{run_label(a)} wrong"],
            f"{run_label(b)} right": [diff.both_right, diff.only_b],
            f"{run_label(b)} wrong": [diff.only_a, diff.both_wrong],
        }
    )
    st.dataframe(counts, hide_index=True)
    if diff.disagreements:
        table = pd.DataFrame(diff.disagreements).rename(
            columns={"label": "true label", "a": run_label(a), "b": run_label(b)}
        )
        st.dataframe(
            table, hide_index=True, width="stretch", column_config={"text": st.column_config.TextColumn(width="large")}
        )
        st.caption(f"The {len(diff.disagreements)} examples where the two runs predict different labels.")


st.title(":material/chat: Playground")
st.caption(
    "Try a trained model on your own sentences, compare two runs on the same sentences, and look at where "
    "each one goes wrong on its evaluation set."
)

hidden = Settings.read(lab.data).hides(page.actor())  # the class lesson's runs, until the host reveals them
runs = [r for r in lab.store.list_runs() if lab.data.folder_of(r).has_model and r.group_id not in hidden]
if (who := page.actor()) is not None and not who.host:  # a participant's upload is theirs alone: its texts too
    runs = [r for r in runs if who.may_read(r)]
if not runs:
    st.info(
        "No trained model yet. A run saves its model when it finishes (or is cancelled); launch one, for a "
        "quick try with the tiny demo model."
    )
    st.page_link(page.LAUNCH_PAGE, label="Launch a run", icon=":material/rocket_launch:")
    st.stop()

by_id = {r.id: r for r in runs}
pick_a, pick_b = st.columns(2)
first = pick_a.selectbox(
    "Model",
    list(by_id),
    format_func=lambda i: run_label(by_id[i]),
    key="run_a",
    help="Runs that saved a model: finished ones, and cancelled ones (at the step they stopped).",
)
pick_a.download_button(
    "Take this model home (zip)",
    partial(takehome.model_zip, lab.data, by_id[first]),
    f"{takehome.folder_name(by_id[first])}.zip",
    "application/zip",
    on_click="ignore",
    icon=":material/download:",
    help='The model folder `transformers` loads (pipeline("text-classification", model=…)), with a model card: '
    "what it was trained on, every knob, its scores and confusion matrix.",
)
others = [i for i in by_id if i != first]
compare = pick_b.toggle("Compare with a second run", key="compare", disabled=not others)
second = (
    pick_b.selectbox("Second model", others, format_func=lambda i: run_label(by_id[i]), key="run_b")
    if compare and others
    else None
)
chosen = [by_id[first]] + ([by_id[second]] if second is not None else [])

if "sentences" not in st.session_state:
    dataset = str(by_id[first].config.get("dataset"))
    st.session_state["sentences"] = "\n".join(EXAMPLES.get(dataset, EXAMPLES["rotten_tomatoes"]))
text = st.text_area(
    "Sentences, one per line",
    key="sentences",
    height=120,
    help=f"Up to {MAX_SENTENCES} lines; press Ctrl+Enter (or click outside) to predict.",
)
sentences = [line.strip() for line in text.splitlines() if line.strip()][:MAX_SENTENCES]

st.subheader("Predictions")
if not sentences:
    st.info("Type a sentence above to see what the model predicts.")
else:
    results = {}
    for column, run in zip(st.columns(len(chosen), gap="large"), chosen):
        with column:
            results[run.id] = render_predictions(run, sentences)
    if len(results) == 2:
        a, b = results.values()
        same = ["✓ same" if x == y else "✗ differ" for x, y in zip(a["predicted"], b["predicted"])]
        agree = pd.DataFrame(
            {
                "text": sentences,
                run_label(chosen[0]): a["predicted"],
                run_label(chosen[1]): b["predicted"],
                "agree": same,
            }
        )
        st.markdown("**Side by side**")
        st.dataframe(agree, hide_index=True, width="stretch")

st.subheader("Evaluation set")
for column, run in zip(st.columns(len(chosen), gap="large"), chosen):
    with column:
        render_eval_report(run)
if len(chosen) == 2:
    render_prediction_diff(*chosen)
