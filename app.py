"""Launch page: choose data and a model, set the optimization knobs, preview the LR schedule, queue a run.

Widgets → RunConfig (validated; every problem is named) → `service.submit` (the background worker trains it).
Widget keys are RunConfig field names where they map one to one, so a cloned run's config fills them directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from bert_lab.core.config import CHOICES, MINILM_ALIASES, OPTIMIZERS, SCHEDULES, ConfigError, RunConfig, field_help
from bert_lab.core.layout import DATA_SUFFIXES
from bert_lab.core.text import MAX_NAME_CHARS, TextTooLongError, clean_name
from bert_lab.engine import data
from bert_lab.engine.schedules import count_steps, first_drop_step, lr_curve
from bert_lab.figures import launch_charts
from bert_lab.runs import service, workshop
from bert_lab.sweeps.estimate import estimate_from_store, no_runs_words
from lab_ui import launched, link, lr_finder, page, sweep_form

lab = page.start(run_counts=False)  # drawn at the end, after a launch

LR_OPTIONS = [float(f"{m}e{e}") for e in range(-6, 0) for m in (1, 2, 3, 5)] + [1.0]
DROPOUT_OPTIONS = [None, *(round(0.05 * i, 2) for i in range(19))]  # None: the model's own (0.1 for BERT)
PENALTY_OPTIONS = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
WEIGHT_DECAY_OPTIONS = [0.0, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.3, 1.0]
BATCH_OPTIONS, LENGTH_OPTIONS = [4, 8, 16, 32, 64, 128], [16, 32, 64, 128, 256, 512]
SOURCES = ("Bundled dataset", "Upload a CSV", "CSV file on the server")
MODELS = {
    "minilm": "Bundled MiniLM (all-MiniLM-L6-v2, pretrained, 22M parameters)",
    "tiny": "Tiny demo BERT (random weights, 2 layers: trains in seconds, learns little)",
    "folder": "A local model folder or a cached Hugging Face id",
}
WORKSHOP = workshop.enabled()
WORKSHOP_SOURCES, WORKSHOP_MODELS = SOURCES[:2], workshop.OFFERED_MODELS  # no paths on the server's disk
SCHEDULE_NAMES = {
    "constant": "Constant",
    "exponential": "Exponential decay",
    "step": "Step decay",
    "linear": "Linear decay to 0",
    "cosine": "Cosine decay to 0",
}
PADDING_NAMES = {"dynamic": "to each batch's longest", "max_length": "every batch to max length"}
OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam", "adamw": "AdamW"}
AUTO = "(detect)"
FLAT = ":material/trending_flat:"  # the icon of a schedule that stays at one rate
LABELS = {
    "lr": "Learning rate",
    "optimizer": "Optimizer",
    "momentum": "Momentum",
    "nesterov": "Nesterov momentum",
    "beta1": "Adam β₁",
    "beta2": "Adam β₂",
    "weight_decay": "Weight decay (decoupled)",
    "l2": "L2 penalty",
    "l1": "L1 penalty",
    "max_grad_norm": "Gradient clipping (max norm)",
    "batch_size": "Batch size",
    "grad_accum_steps": "Gradient accumulation steps",
    "num_epochs": "Epochs",
    "schedule": "Schedule",
    "warmup_steps": "Warmup steps",
    "decay_rate": "Decay rate",
    "decay_steps": "Decay steps",
    "step_size": "Step size (steps between drops)",
    "gamma": "Drop factor γ",
    "eval_every_steps": "Evaluate every N steps",
    "early_stopping_patience": "Early-stopping patience",
    "early_stopping_metric": "Early-stopping metric",
    "seed": "Seed",
    "precision": "Precision",
    "group_by_length": "Group batches by length (faster)",
    "train_size": "Training examples",
    "eval_size": "Evaluation examples",
    "max_length": "Max length (tokens)",
    "padding": "Padding",
    "dropout": "Dropout",
    "dataset": "Dataset",
    "model": "Model",
    "text_column": "Text column",
    "label_column": "Label column",
}
WIDGET_FIELDS = [name for name in LABELS if name not in ("dataset", "model", "text_column", "label_column")]
BASE = RunConfig()
DEFAULTS: dict[str, Any] = {name: getattr(BASE, name) for name in WIDGET_FIELDS} | {
    "source": SOURCES[0],
    "bundled": BASE.dataset,
    "csv_path": "",
    "text_choice": AUTO,
    "label_choice": AUTO,
    "model_choice": "minilm",
    "model_path": "",
    "run_name": "",
    "owner": "",
    "sweep_mode": False,
}


def kw(name: str) -> dict[str, Any]:
    """Label, one-line help and session key of the widget for RunConfig field `name`."""
    return {"label": LABELS[name], "help": field_help(name), "key": name}


def knob(draw: Any, name: str, **options: Any) -> Any:
    """Draw the widget of RunConfig field `name` with `draw` (st.slider, a column's number_input, …), unless the
    link hides it (`?hide=…`, for a presenter): then its value stays as set, from the defaults or the link."""
    if name in HIDDEN:
        return st.session_state[name]
    return draw(**options, **kw(name))


def fmt_sci(value: float) -> str:
    if value == 0:
        return "0 (off)"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def name_box(column: Any, label: str, key: str, placeholder: str) -> str:
    """A name box that shows the name as it will be stored: direction controls out (U+202E would show it reversed),
    at most as long as a name may be."""

    def clean() -> None:
        st.session_state[key] = clean_name(st.session_state[key])

    return column.text_input(label, key=key, placeholder=placeholder, max_chars=MAX_NAME_CHARS, on_change=clean)


def fmt_dropout(value: float | None) -> str:
    return "model default" if value is None else f"{value:g}"


def options_with(options: list[Any], key: str) -> list[Any]:
    """`options` plus the current value of `key` (a cloned run may use a value between the usual stops)."""
    return sorted(set(options) | {st.session_state[key]}, key=lambda v: -math.inf if v is None else v)


def widget_values(config: dict[str, Any]) -> dict[str, Any]:
    """Widget state that reproduces a run's config (the "Clone" hand-off from the Runs page)."""
    values = {name: config[name] for name in WIDGET_FIELDS if name in config}
    for name, value in values.items():  # JSON may hold 1 for 1.0: number widgets want the default's type
        if type(DEFAULTS[name]) in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            values[name] = type(DEFAULTS[name])(value)
    dataset, model = str(config.get("dataset", BASE.dataset)), str(config.get("model", BASE.model))
    if dataset in data.BUNDLED:
        values |= {"source": SOURCES[0], "bundled": dataset}
    else:
        values |= {
            "source": SOURCES[2],
            "csv_path": dataset,
            "text_choice": config.get("text_column") or AUTO,
            "label_choice": config.get("label_column") or AUTO,
        }
    choice = "minilm" if model.lower() in MINILM_ALIASES else "tiny" if model == "tiny" else "folder"
    return values | {"model_choice": choice, "model_path": model if choice == "folder" else ""}


def init_state() -> list[str]:
    """Start widgets from their defaults, from a shared link (on a tab's first visit), from what this tab last had
    (pages forget widgets), or from a clone. Returns the link's problems (each ignored)."""
    saved = st.session_state.get("_launch_values", {})
    clone, clone_name = page.take_clone() or (None, "")
    problems: list[str] = []
    if "_launch_values" not in st.session_state and clone is None and st.query_params:
        fields, problems = link.config_from_query(
            st.query_params.to_dict(), allow=lambda config: workshop.check_config(config, lab.data, page.actor())
        )
        saved = widget_values({**BASE.to_dict(), **fields}) if fields else {}
    if clone is not None:  # the name box and the last launch's box were about another config
        name = service.fitted(f"{clone_name} (clone)") if clone_name else ""
        saved = {**saved, **widget_values(clone), "run_name": name}
        st.session_state.pop(launched.LAUNCHED_KEY, None)
        st.session_state["_extra_fields"] = {k: v for k, v in clone.items() if k not in LABELS}
        st.toast("Settings copied from the cloned run: change what you want and launch.")
    for key, default in DEFAULTS.items():
        if clone is not None or key not in st.session_state:
            st.session_state[key] = saved.get(key, default)
    if WORKSHOP:  # the server's own files are off limits to participants: a clone or link cannot reach them
        for key, allowed in (("source", WORKSHOP_SOURCES), ("model_choice", WORKSHOP_MODELS)):
            if st.session_state[key] not in allowed:
                st.session_state[key] = DEFAULTS[key]
    return problems


@st.cache_data(max_entries=4, show_spinner=False)
def header_of(source: bytes | str, name: str, stamp: float) -> list[str]:
    return data.table_header(source if isinstance(source, bytes) else Path(source), name=name)


@st.cache_data(max_entries=4, show_spinner=False)
def preview(
    source: bytes | str, name: str, stamp: float, text: str | None, label: str | None
) -> tuple[pd.DataFrame, dict, data.TableFormat]:
    return data.preview_csv(
        source if isinstance(source, bytes) else Path(source), 5, name=name, text_column=text, label_column=label
    )


def render_data() -> tuple[dict[str, Any], int | None, bytes | None, str | None]:
    """Dataset widgets → (config fields, examples available, upload bytes to stage, the data's problem)."""
    sources = WORKSHOP_SOURCES if WORKSHOP else SOURCES
    source = st.radio("Where the data comes from", sources, key="source", horizontal=True)
    if source == SOURCES[0]:
        name = st.selectbox(LABELS["dataset"], list(data.BUNDLED), key="bundled", help=field_help("dataset"))
        ds = data.load_dataset(name)
        st.caption(
            f"{data.BUNDLED[name]} · {len(ds):,} examples · labels: "
            + ", ".join(f"{k} ({v:,})" for k, v in ds.label_counts().items())
        )
        # A toggle rather than an expander: an expander draws its table (a heavy grid) even while it is closed.
        if st.toggle("Peek at the data", key="peek"):
            st.dataframe(
                pd.DataFrame({"text": ds.texts[:5], "label": [ds.label_names[y] for y in ds.labels[:5]]}),
                hide_index=True,
            )
        return {"dataset": name}, len(ds), None, None
    upload: bytes | None = None
    if source == SOURCES[1]:
        file = st.file_uploader(
            "Data file: CSV (comma, semicolon or tab), TSV or JSON Lines; a text column and a label column",
            type=[s.removeprefix(".") for s in DATA_SUFFIXES],
        )
        upload = file.getvalue() if file else None
        if WORKSHOP and upload is not None and len(upload) > workshop.UPLOAD_LIMIT_MB * 1_000_000:
            problem = f"{file.name} is over the workshop's {workshop.UPLOAD_LIMIT_MB} MB limit for uploads"
            st.error(page.md(problem))
            return {"dataset": file.name}, None, None, problem
        src: bytes | Path | None = upload
        display, stamp = (file.name if file else ""), 0.0
    else:
        path = st.text_input("Path to a data file on the machine running the app", key="csv_path").strip()
        src = Path(path).expanduser() if path else None
        display = path
        stamp = src.stat().st_mtime if src is not None and src.is_file() else 0.0
    if src is None:
        st.info(
            "A data file needs a header row (a CSV) or keys (JSON Lines), one column of texts and one of labels "
            "(words or numbers). A spreadsheet's CSV works as it saves it: semicolons, tabs, Windows-1252."
        )
        return {"dataset": "upload.csv"}, None, None, "choose a data file first"
    source = src if isinstance(src, bytes) else str(src)
    try:
        header = header_of(source, Path(display).name, stamp)
    except OSError as exc:
        problem = f"cannot read {display}: {exc.strerror or exc}"
        st.error(f"This file can't be used: {page.md(problem)}")
        return {"dataset": display}, None, None, problem
    except data.DataError as exc:
        st.error(f"This file can't be used: {page.md(exc)}")
        return {"dataset": display}, None, None, str(exc)
    for key in ("text_choice", "label_choice"):
        if st.session_state[key] not in header:
            st.session_state[key] = AUTO
    left, right = st.columns(2)
    text = left.selectbox(LABELS["text_column"], [AUTO, *header], key="text_choice", help=field_help("text_column"))
    label = right.selectbox(
        LABELS["label_column"], [AUTO, *header], key="label_choice", help=field_help("label_column")
    )
    columns = {"text_column": None if text == AUTO else text, "label_column": None if label == AUTO else label}
    try:
        rows, counts, how = preview(source, Path(display).name, stamp, *columns.values())
    except data.DataError as exc:
        problem = str(exc)
    else:
        st.dataframe(rows, hide_index=True)
        st.caption(
            f"Read as {how.describe()}. Label counts (after dropping repeated texts): "
            + ", ".join(f"{page.md(k)} ({v:,})" for k, v in counts.items())
        )
        return {"dataset": display, **columns}, sum(counts.values()), upload, None
    st.error(f"This file can't be used: {page.md(problem)}")
    return {"dataset": display or "upload.csv", **columns}, None, None, problem


def render_padding_stats(config: RunConfig, lengths: Sequence[int]) -> None:
    """What max length cuts and what padding costs, for the training batches this config makes, in both modes."""
    stats = {
        mode: data.padding_stats(
            lengths,
            max_length=config.max_length,
            batch_size=config.batch_size,
            padding=mode,
            group_by_length=config.group_by_length,
            seed=config.seed,
        )
        for mode in CHOICES["padding"]
    }
    other_mode = "max_length" if config.padding == "dynamic" else "dynamic"
    chosen, other = stats[config.padding], stats[other_mode]
    st.caption(
        f"Max length {config.max_length} cuts **{chosen.truncated:.1%}** of the {len(lengths):,} training texts. "
        f"A batch of {config.batch_size} holds {chosen.tokens_per_batch:,.0f} tokens, "
        f"**{chosen.padding_per_batch:,.0f} ({chosen.padding_share:.0%}) of them padding**; "
        f"padding {PADDING_NAMES[other_mode]} it would hold "
        f"{other.tokens_per_batch:,.0f} ({other.padding_share:.0%} padding). Compute grows with tokens per batch."
    )


def render_schedule_preview(config: RunConfig, n_train: int) -> int:
    total = count_steps(n_train, config.batch_size, config.grad_accum_steps, config.num_epochs)[1]
    # Vega-Lite, not plotly: plotly's 4.7 MB script would cost every new tab ~0.9 s before its widgets show.
    st.altair_chart(
        launch_charts.lr_schedule_chart(lr_curve(config, total), warmup_steps=config.warmup_steps), key="lr_preview"
    )
    st.caption(
        f"{n_train:,} training examples ÷ batch {config.batch_size} × {config.num_epochs:g} epoch(s) = "
        f"**{total:,} optimizer steps**. Training uses exactly this function of the step."
    )
    if (first := first_drop_step(config)) is not None and first >= total:  # a staircase with no step in it
        room = total - config.warmup_steps  # steps after warmup: a step size below this drops at least once
        fix = f"lower the step size below {room:,}" if room > 1 else "shorten the warmup or train longer"
        st.warning(
            f"The first drop comes at step {first:,}, after this run's {total:,} steps: it trains at a constant "
            f"rate. To see it decay, {fix}.",
            icon=FLAT,
        )
    elif config.schedule == "step" and config.gamma == 1:
        st.warning("A drop factor γ of 1 never lowers the rate: it trains at a constant rate.", icon=FLAT)
    return total


# --- page -------------------------------------------------------------------------------------------------------------
if lesson := st.query_params.get("lesson"):  # ?lesson=NAME opens a lesson
    st.switch_page(page.LESSONS_PAGE, query_params={"lesson": lesson})
HIDDEN = link.hidden(st.query_params.to_dict())
link_problems = init_state()
st.title(":material/rocket_launch: Launch a fine-tuning run")
for problem in link_problems:
    st.warning(f"This link's setting was ignored: {page.md(problem)}")
st.caption(
    "Pick data and a model, set the knobs, check the learning-rate preview, then launch. Runs train in the "
    "background one after another; watch and compare them on the **Runs** page."
)

col_data, col_model, col_length = st.columns(3, gap="large")
with col_data:
    st.subheader("1 · Data")
    data_fields, available, upload, data_problem = render_data()
with col_model:
    st.subheader("2 · Model")
    model_choice = st.radio(
        "Model",
        list(WORKSHOP_MODELS if WORKSHOP else MODELS),
        format_func=MODELS.get,
        key="model_choice",
        help=field_help("model"),
    )
    model = model_choice
    if model_choice == "folder":
        model = st.text_input(
            "Model folder or cached hub id", key="model_path", placeholder="/models/bert-base-uncased"
        ).strip()
        folder = Path(model).expanduser()
        if model and folder.is_dir() and not (folder / "config.json").exists():
            st.warning(f"{page.md(folder)} has no config.json: it is not a Hugging Face model folder.")
        elif model and not folder.is_dir() and model.startswith(("/", ".", "~")):
            st.warning(f"There is no folder {page.md(folder)}; the run will fail unless it names a cached hub id.")
    knob(st.select_slider, "max_length", options=options_with(LENGTH_OPTIONS, "max_length"))
    knob(st.radio, "padding", options=list(CHOICES["padding"]), format_func=PADDING_NAMES.get, horizontal=True)
    length_slot = st.container()
with col_length:
    st.subheader("3 · How long")
    knob(st.number_input, "train_size", min_value=2, max_value=1_000_000, step=100)
    knob(st.select_slider, "batch_size", options=options_with(BATCH_OPTIONS, "batch_size"))
    knob(st.number_input, "num_epochs", min_value=0.1, max_value=100.0, step=0.5, format="%.2f")
    knob(st.number_input, "seed", min_value=0, max_value=2**32 - 1, step=1)

col_opt, col_reg, col_sched = st.columns([1, 1, 1.4], gap="large")
with col_opt:
    st.subheader("4 · Optimizer")
    optimizer = knob(st.selectbox, "optimizer", options=list(OPTIMIZERS), format_func=OPTIMIZER_NAMES.get)
    knob(st.select_slider, "lr", options=options_with(LR_OPTIONS, "lr"), format_func=fmt_sci)
    finder_slot = st.empty()  # the "Find a learning rate" button, once the config is known
    if optimizer == "momentum":
        knob(st.slider, "momentum", min_value=0.0, max_value=0.99, step=0.01)
        knob(st.checkbox, "nesterov")
    if optimizer in ("adam", "adamw"):
        knob(st.slider, "beta1", min_value=0.5, max_value=0.999, step=0.001, format="%.3f")
        knob(st.slider, "beta2", min_value=0.9, max_value=0.9999, step=0.0001, format="%.4f")
with col_reg:
    st.subheader("5 · Regularization")
    knob(st.select_slider, "dropout", options=options_with(DROPOUT_OPTIONS, "dropout"), format_func=fmt_dropout)
    knob(
        st.select_slider,
        "weight_decay",
        options=options_with(WEIGHT_DECAY_OPTIONS, "weight_decay"),
        format_func=fmt_sci,
    )
    knob(st.select_slider, "l2", options=options_with(PENALTY_OPTIONS, "l2"), format_func=fmt_sci)
    knob(st.select_slider, "l1", options=options_with(PENALTY_OPTIONS, "l1"), format_func=fmt_sci)
    knob(st.number_input, "max_grad_norm", min_value=0.0, max_value=1e6, step=0.5)
with col_sched:
    st.subheader("6 · Learning-rate schedule")
    left, right = st.columns(2)
    schedule = knob(left.selectbox, "schedule", options=list(SCHEDULES), format_func=SCHEDULE_NAMES.get)
    knob(right.number_input, "warmup_steps", min_value=0, step=10)
    if schedule == "exponential":
        knob(left.slider, "decay_rate", min_value=0.01, max_value=1.0, step=0.01)
        knob(right.number_input, "decay_steps", min_value=1, step=10)
    elif schedule == "step":
        knob(left.number_input, "step_size", min_value=1, step=10)
        knob(right.slider, "gamma", min_value=0.05, max_value=1.0, step=0.05)
    schedule_slot = st.container()

finder_panel = st.container()
with st.expander("Advanced: evaluation, early stopping, accumulation, precision"):
    a, b, c = st.columns(3)
    knob(a.number_input, "eval_size", min_value=2, max_value=100_000, step=100)
    knob(a.number_input, "eval_every_steps", min_value=0, step=10)
    knob(b.number_input, "grad_accum_steps", min_value=1, max_value=1024, step=1)
    knob(b.number_input, "early_stopping_patience", min_value=0, max_value=1000, step=1)
    knob(c.selectbox, "early_stopping_metric", options=CHOICES["early_stopping_metric"])
    knob(c.selectbox, "precision", options=["auto", "fp32", "bf16", "fp16"])
    knob(c.checkbox, "group_by_length")
    if extra := {k: v for k, v in st.session_state.get("_extra_fields", {}).items() if getattr(BASE, k, v) != v}:
        st.caption("Also kept from the cloned run: " + ", ".join(f"{k} = {page.md(v)}" for k, v in extra.items()))

values = {name: st.session_state[name] for name in WIDGET_FIELDS}
values["nesterov"] = bool(values["nesterov"]) and optimizer == "momentum"
try:
    config = RunConfig(**{**st.session_state.get("_extra_fields", {}), **values, **data_fields, "model": model})
    problems: dict[str, str] = {}
except ConfigError as exc:
    config, problems = None, exc.problems
with schedule_slot:
    if config is not None:
        n_train, n_eval = (  # what the split gives: a small dataset caps both
            (config.train_size, config.eval_size)
            if available is None
            else data.split_sizes(available, config.train_size, config.eval_size)
        )
        total_steps = render_schedule_preview(config, n_train)
    else:
        st.info("The preview appears once the settings below are valid.")
if config is not None and not data_problem:
    if lengths := data.training_token_lengths(config, upload):
        with length_slot:
            render_padding_stats(config, lengths)

with finder_slot.container():
    lr_finder.render_find_button(lab, config if not data_problem else None)
with finder_panel:
    lr_finder.render_finder(lab, config if not data_problem else None)

st.subheader("7 · Launch")
name_col, owner_col, button_col = st.columns([2, 2, 1], vertical_alignment="bottom")
run_name = name_box(name_col, "Name (optional)", "run_name", "e.g. adamw-lr1e-4")
if WORKSHOP:  # runs belong to whoever signed in
    owner = page.owner()
    owner_col.caption(f"Launched as **{page.md(owner)}**")
else:
    owner = name_box(owner_col, "Owner (optional)", "owner", "your name")
for field, message in problems.items():
    st.error(f"**{LABELS.get(field, field)}**: {page.md(message)}")
if config is not None and not data_problem:
    st.caption(
        f"Trains **{MODELS[model_choice].split(' (')[0] if model_choice != 'folder' else page.md(model)}** on "
        f"**{page.md(Path(config.dataset).name)}**: {n_train:,} examples, {total_steps:,} steps of "
        f"{OPTIMIZER_NAMES[config.optimizer]} at learning rate {fmt_sci(config.lr)} "
        f"({SCHEDULE_NAMES[config.schedule].lower()}), evaluated on {n_eval:,} held-out examples"
        + (
            f" (the data's {available:,} examples cap the {config.train_size:,} + {config.eval_size:,} asked for)."
            if (n_train, n_eval) != (config.train_size, config.eval_size)
            else "."
        )
    )
if config is not None and not data_problem:  # what finished runs like this one scored (~15 ms for 300 runs)
    hidden = workshop.Settings.read(lab.data).hides(page.actor())  # a class lesson's result, until it is revealed
    guess = estimate_from_store(lab.store, config, data=upload, hidden=hidden)
    st.caption(f":material/history: {page.md(guess.words if guess else no_runs_words(config))}")
    if guess and st.button(
        f"Open run #{guess.nearest_id} on the Runs page",
        key="estimate_run",
        type="tertiary",
        icon=":material/monitoring:",
    ):
        st.session_state["_selected_ids"] = [guess.nearest_id]  # the Runs page shows the runs selected
        st.switch_page(page.RUNS_PAGE)
sweep_mode = st.toggle(
    "Launch as a sweep: vary 1–3 knobs, with several seeds per config",
    key="sweep_mode",
    help="A group of runs read together on the Groups page: mean ± band per config, and whether a gap is real.",
)
if sweep_mode:
    if upload is not None and config is not None:
        staged = service.stage_upload(lab, upload, config.dataset, owner=owner.strip())
        config = RunConfig(**{**config.to_dict(), "dataset": str(staged)})
    sweep_form.render_sweep_form(lab, config, name=run_name.strip(), owner=owner.strip(), problem=data_problem)
    sweep_form.render_last_group()
launch = button_col.button(
    "Launch run",
    key="launch",
    type="primary",
    icon=":material/rocket_launch:",
    disabled=bool(problems or data_problem or sweep_mode),
    width="stretch",
)
if launch and config is not None:
    try:
        if upload is not None:
            staged = service.stage_upload(lab, upload, data_fields["dataset"], owner=owner.strip())
            config = RunConfig(**{**config.to_dict(), "dataset": str(staged)})
        run = service.submit(lab, config, name=run_name.strip(), owner=owner.strip(), actor=page.actor())
    except (data.DataError, ConfigError, TextTooLongError, workshop.QueueFullError, workshop.ServerPathError) as exc:
        st.session_state.pop(launched.LAUNCHED_KEY, None)  # the last launch's "Queued run" box would read as this one's
        st.error(f"Nothing was queued: {page.md(exc)}")
    else:
        st.session_state[launched.LAUNCHED_KEY] = (run.id, run.name)
        page.remember_launched(run.id)
        page.ensure_worker(lab)
if (last := st.session_state.get(launched.LAUNCHED_KEY)) and not sweep_mode:
    st.success(
        f"Queued run **#{last[0]} {page.md(last[1])}**. Change any knob and launch again to compare.",
        icon=":material/check_circle:",
    )
    launched.render_launched()
    st.page_link(page.RUNS_PAGE, label="Compare it with other runs on the Runs page", icon=":material/monitoring:")

if config is not None:  # the address always holds these settings: copy it, bookmark it, send it
    query = link.query_from_config(config, hidden=HIDDEN)
    st.query_params.from_dict({**query, **page.token_query()})  # the sign-in token stays; a shared link has none
    with st.popover("Share these settings", icon=":material/link:"):
        st.caption("Opening this link restores every setting that differs from the defaults (copy it on the right).")
        st.code(link.url(st.context.url, query), language=None, wrap_lines=True)
        st.caption("Add `&hide=l1,l2,…` to hide knobs while presenting.")
st.session_state["_launch_values"] = {k: st.session_state[k] for k in DEFAULTS if k in st.session_state}
with st.sidebar:
    page.render_live_run_counts(lab.store.list_runs())
