"""AppTests of the Groups page (`pages/3_Groups.py`) and of the launch page's sweep builder: what a person reads
(verdict, table, degenerate runs, charts) and what the buttons do to the store. Nothing trains here."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from page_view import read, titles
from streamlit.testing.v1 import AppTest
from test_report import finished_group

from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status

OpenPage = Callable[..., AppTest]
GROUPS = "pages/3_Groups.py"
HOSTILE = "<img src=x onerror=alert(1)> **bold** [link](http://x)"


def test_without_groups_the_page_says_how_to_make_one(open_page: OpenPage) -> None:
    at = open_page(GROUPS)
    assert "No groups yet" in read(at.info)


def test_a_real_difference_is_called_real_with_its_table_and_charts(lab: Lab, open_page: OpenPage) -> None:
    group_id = finished_group(lab, {3e-3: [0.58, 0.58, 0.60], 1e-4: [0.76, 0.75, 0.77]})
    at = open_page(GROUPS)
    assert at.selectbox(key="group").value == group_id
    assert "lr=0.0001 vs lr=0.003: Accuracy +17.33 points (95% interval +14.86 to +19.80): real at 95%." in read(
        at.success
    )
    assert "Degenerate runs" in read(at.warning) and "lr=0.003: 2 of 3" in read(at.warning)
    table = at.dataframe[0].value
    assert list(table["config"]) == ["lr=0.0001", "lr=0.003"] and list(table[""]) == ["★ best", ""]
    assert list(table["n"]) == [3, 3] and table["Accuracy %"][0].startswith("76.0 ± 1.0  [")
    assert list(table["degenerate"]) == [0, 2]
    shown = titles(at)
    assert any(t.startswith("F1 (macro): mean over seeds") for t in shown)
    assert any(t.startswith("Each finished run") for t in shown)
    assert any(t == "What moved the score (main effects (η²))" for t in shown)
    assert at.button[0].disabled  # nothing to cancel: every run finished


def test_noise_is_called_noise_and_any_two_configs_can_be_compared(lab: Lab, open_page: OpenPage) -> None:
    finished_group(lab, {1e-4: [0.76, 0.75, 0.77], 2e-4: [0.70, 0.72, 0.65], 3e-4: [0.5, 0.52, 0.51]})
    at = open_page(GROUPS)
    assert "within seed noise, run more seeds" in read(at.warning)
    at.selectbox(key="verdict_b").set_value("lr=0.0003").run()
    assert "lr=0.0001 vs lr=0.0003" in read(at.success) and "real at 95%" in read(at.success)


def test_group_buttons_cancel_resume_and_delete(lab: Lab, open_page: OpenPage) -> None:
    group = lab.store.create_group(
        name=HOSTILE, method="grid", metric="f1", spec={}, runs=[({"lr": 1e-4}, "a", None)] * 2
    )
    at = open_page(GROUPS)
    caption = read(at.caption)
    assert HOSTILE in caption and "<img" not in "\n".join(str(c.value) for c in at.caption).replace("\\<img", "")
    at.button[0].click().run()  # cancel
    assert {r.status for r in lab.store.list_runs(group_id=group.id)} == {Status.CANCELLED}
    at.button[1].click().run()  # resume
    assert {r.status for r in lab.store.list_runs(group_id=group.id)} == {Status.QUEUED}
    assert at.button[2].disabled  # delete waits for "I am sure"
    at.checkbox(key=f"confirm_delete_{group.id}").check().run()
    at.button[2].click().run()
    assert lab.store.list_groups() == [] and lab.store.list_runs() == []


def test_the_launch_page_counts_confirms_and_queues_a_sweep(lab: Lab, open_page: OpenPage) -> None:
    at = open_page(state={"model_choice": "tiny", "train_size": 200})
    at.toggle(key="sweep_mode").set_value(True).run()
    assert at.button(key="sweep_ask").label == "Queue 9 runs…"  # lr: 3 values × 3 seeds by default
    said = read(at.markdown)
    assert "9 runs will be queued** (3 configs × 3 seeds), about **" in said
    assert "a guess (400 samples/s): no run of this model has finished here yet" in said
    at.text_input(key="sweep_values_lr").set_value("1e-4, -1").run()
    assert "lr=-1: must be a number" in read(at.error) and not [b for b in at.button if b.key == "sweep_ask"]
    at.text_input(key="sweep_values_lr").set_value("1e-4, 3e-3").run()
    at.slider(key="sweep_seeds").set_value(2).run()
    at.button(key="sweep_ask").click().run()
    assert lab.store.list_runs() == []  # asked, not yet confirmed
    assert "Queue this sweep?" in read(at.warning)
    at.button(key="sweep_confirm").click().run()
    [group] = lab.store.list_groups()
    runs = lab.store.list_runs(group_id=group.id)
    assert group.method == "grid" and len(runs) == 4
    assert sorted((r.config["lr"], r.config["seed"], r.config["model"]) for r in runs) == [
        (1e-4, 42, "tiny"),
        (1e-4, 43, "tiny"),
        (3e-3, 42, "tiny"),
        (3e-3, 43, "tiny"),
    ]
    assert "Queued sweep" in read(at.success)


def test_the_launch_page_queues_a_search_as_its_first_trial(lab: Lab, open_page: OpenPage) -> None:
    at = open_page(state={"model_choice": "tiny"})
    at.toggle(key="sweep_mode").set_value(True).run()
    at.radio(key="sweep_method").set_value("search").run()
    at.text_input(key="sweep_range_lr").set_value("1e-3:1e-5").run()
    assert "lr: the range's low 0.001 is above its high 1e-05" in read(at.error)
    at.text_input(key="sweep_range_lr").set_value("1e-5:1e-3").run()
    assert at.button(key="sweep_ask").label == "Queue up to 36 runs…"  # 12 trials × 3 seeds, fewer if pruned
    at.button(key="sweep_ask").click().run()
    at.button(key="sweep_confirm").click().run()
    [group] = lab.store.list_groups()
    runs = lab.store.list_runs(group_id=group.id)
    assert group.method == "search" and group.spec["trials"] == 12 and len(runs) == 3
    assert len({r.config["lr"] for r in runs}) == 1 and 1e-5 <= runs[0].config["lr"] <= 1e-3


def test_a_search_is_shown_as_optuna_dashboard_shows_a_study(lab: Lab, open_page: OpenPage) -> None:
    """History, slice and contour from `optuna.visualization`, one trial per config (its mean over seeds)."""
    configs = [(1e-4, 0.1, 0.70), (3e-4, 0.0, 0.78), (1e-3, 0.2, 0.74), (3e-5, 0.3, 0.66)]
    runs = [
        ({"lr": lr, "dropout": d, "seed": 42 + s}, f"trial {i} seed {s}", None)
        for i, (lr, d, _) in enumerate(configs)
        for s in (0, 1)
    ]
    group = lab.store.create_group(
        name="search", method="search", metric="accuracy", spec={"knobs": ["lr", "dropout"], "seeds": 2}, runs=runs
    )
    for run in sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id):
        accuracy = next(acc for lr, d, acc in configs if (lr, d) == (run.config["lr"], run.config["dropout"]))
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "accuracy", accuracy + (run.config["seed"] - 42) * 0.01)])
        lab.store.set_status(run.id, Status.FINISHED)
    at = open_page(GROUPS)
    assert not at.exception and "As Optuna Dashboard shows it" in [h.value for h in at.subheader]
    assert [t.label for t in at.tabs] == ["Optimisation history", "Slice", "Contour"]
    figures = {
        json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec) for c in at.get("plotly_chart")
    }
    history = figures["Optimization History Plot"]
    [objective] = [t for t in history["data"] if t.get("name") == "Accuracy"]
    assert objective["x"] == [0, 1, 2, 3] and objective["y"] == pytest.approx([0.705, 0.785, 0.745, 0.665])
    assert figures["Slice Plot"]["layout"]["yaxis"]["title"]["text"] == "Accuracy"
    contour = figures["Contour Plot"]["layout"]
    assert {contour["xaxis"]["title"]["text"], contour["yaxis"]["title"]["text"]} == {"lr", "dropout"}


def test_a_group_of_one_config_is_no_study_yet(lab: Lab, open_page: OpenPage) -> None:
    finished_group(lab, {1e-4: [0.76, 0.75, 0.77]})
    at = open_page(GROUPS)
    assert not at.exception and "As Optuna Dashboard shows it" not in [h.value for h in at.subheader]


def test_a_sweep_that_learned_nothing_is_tied_said_once_and_explains_the_missing_importance(
    lab: Lab, open_page: OpenPage
) -> None:
    finished_group(lab, {1e-3: [0.58, 0.58], 3e-3: [0.58, 0.58]})  # every run at the majority class, 58%
    at = open_page(GROUPS)
    table = at.dataframe[0].value
    assert list(table[""]) == ["= tied best", "= tied best"]  # an exact tie: no one ★
    said = read(at.warning)
    assert "every run learned nothing" in said and "run more seeds" not in said and "treat them as equal" not in said
    assert "Every run scored the same Accuracy (58.0%)" in read(at.info)
    assert "appears once two configs" not in read(at.info)
