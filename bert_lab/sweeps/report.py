"""Reading a group: its runs gathered by config (the knob values they share; seeds are replicates), each config's n,
mean, std and 95% interval of every score, runs that learned nothing, and the verdict on whether one config really
beats another (Welch's t from scipy.stats, which does not assume equal spread).

A run counts in the statistics when it finished: its final evaluation is the value. Pruned, diverged, failed and
cancelled runs are counted per status but not averaged (a diverged run also counts as degenerate). An LR range test in
a group is left out: its rising learning rate blows the model up on purpose.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bert_lab.core.metrics import HEADLINE, METRICS
from bert_lab.runs.records import Group, Run
from bert_lab.runs.status import Status
from bert_lab.runs.store import RunStore
from bert_lab.sweeps.spec import describe_params
from bert_lab.sweeps.study import new_study

REPORTED = HEADLINE  # the scores every config's table shows
POWER = 0.8  # "seeds that would likely settle it": enough for an 80% chance that the 95% interval excludes zero
MAX_SEEDS_ADVISED = 100


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    std: float  # sample standard deviation (n − 1); NaN for one run
    ci95: tuple[float, float]  # Student's t interval for the mean; NaN for one run
    clipped: bool = False  # the interval was cut at the score's bounds (a share: 0 and 1), which t ignores

    @classmethod
    def of(cls, values: list[float], bounds: tuple[float, float] | None = None) -> Stats:
        """n, mean, std and the 95% interval of `values`; an interval reaching past `bounds` (what the score can be:
        0 and 1 for accuracy or F1; two runs give a wide one) is cut there, and says so (`clipped`)."""
        from scipy import stats

        n = len(values)
        if n == 0:
            return cls(0, math.nan, math.nan, (math.nan, math.nan))
        mean = float(np.mean(values))
        if n == 1:
            return cls(1, mean, math.nan, (math.nan, math.nan))
        std = float(np.std(values, ddof=1))
        if std == 0:
            return cls(n, mean, 0.0, (mean, mean))
        low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=std / math.sqrt(n))
        if bounds is not None and (low < bounds[0] or high > bounds[1]):
            return cls(n, mean, std, (max(float(low), bounds[0]), min(float(high), bounds[1])), clipped=True)
        return cls(n, mean, std, (float(low), float(high)))

    def to_dict(self) -> dict[str, Any]:
        clipped = {"ci95_clipped": True} if self.clipped else {}
        return {"mean": _json(self.mean), "std": _json(self.std), "ci95": [_json(v) for v in self.ci95], **clipped}


@dataclass(frozen=True)
class ConfigResult:
    params: dict[str, Any]  # the knob values this config's runs share
    runs: list[Run]  # one per seed
    values: dict[str, list[float]]  # metric → its final value in each finished run (REPORTED always present)
    degenerate: int  # runs that learned nothing: accuracy at or below the majority class, or diverged

    @property
    def label(self) -> str:
        return describe_params(self.params) or "base config"

    @property
    def counts(self) -> Counter[str]:
        return Counter(str(r.status) for r in self.runs)

    def stats(self, metric: str) -> Stats:
        """The statistics of `metric` over the finished runs; a share's interval kept within 0 and 1."""
        share = metric in METRICS and METRICS[metric].share
        return Stats.of(self.values.get(metric, []), bounds=(0.0, 1.0) if share else None)

    @property
    def learned_nothing(self) -> bool:
        """Every run that ended (finished or diverged) is degenerate, and at least one did end."""
        ended = sum(r.status in (Status.FINISHED, Status.DIVERGED) for r in self.runs)
        return 0 < ended <= self.degenerate

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "run_ids": [r.id for r in self.runs],
            "n": len(self.values.get("accuracy", [])),
            **{metric: self.stats(metric).to_dict() for metric in REPORTED},
            "degenerate": self.degenerate,
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class Verdict:
    a: ConfigResult  # the better of the two by mean
    b: ConfigResult
    metric: str
    diff: float  # mean of a − mean of b, in points for shares (accuracy, F1), else in the metric's unit
    ci95: tuple[float, float]  # Welch's 95% interval for the difference, same unit; NaN when it cannot be computed
    real: bool  # the interval excludes zero
    seeds_needed: int | None  # seeds per config that would likely settle it (None: settled, or hopeless)

    @property
    def unit(self) -> str:
        return "points" if METRICS[self.metric].share else METRICS[self.metric].label.lower()

    @property
    def learned_nothing(self) -> bool:
        """Every run of both configs learned nothing: neither is better, whatever the numbers or the seeds."""
        return self.a.learned_nothing and self.b.learned_nothing

    @property
    def words(self) -> str:
        """The verdict in a sentence: one piece of advice, never two that disagree."""
        label = METRICS[self.metric].label
        if self.learned_nothing:
            return (
                f"{self.a.label} and {self.b.label}: every run learned nothing (accuracy at the most common class's "
                "share, or the loss blew up), so neither config is better and more seeds will not change that. "
                "Change the config: most often a lower learning rate (each run's notes say what its curves show)."
            )
        gap = f"{self.a.label} vs {self.b.label}: {label} {self.diff:+.2f} {self.unit}"
        if self.diff == 0 and self.ci95 == (0.0, 0.0):
            return f"{gap}: every run of both scored exactly the same: a tie, treat them as equal."
        if math.isnan(self.ci95[0]):
            n = min(len(self.a.values.get(self.metric, [])), len(self.b.values.get(self.metric, [])))
            return f"{gap}, cannot tell yet: {n} finished run(s) per config; run at least 2 seeds of each."
        interval = f"(95% interval {self.ci95[0]:+.2f} to {self.ci95[1]:+.2f})"
        if self.real:
            return f"{gap} {interval}: real at 95%."
        have = min(self.a.stats(self.metric).n, self.b.stats(self.metric).n)
        if self.seeds_needed is None:
            return (
                f"{gap} {interval}: within seed noise, and even {MAX_SEEDS_ADVISED} seeds per config would likely not "
                "separate them: treat them as equal."
            )
        seeds = self.seeds_needed
        more = f"About {seeds} seeds per config would likely settle it ({seeds - have} more each)."
        return f"{gap} {interval}: within seed noise, run more seeds. {more}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.params,
            "b": self.b.params,
            "metric": self.metric,
            "diff": _json(self.diff),
            "unit": self.unit,
            "ci95": [_json(v) for v in self.ci95],
            "real": self.real,
            "seeds_needed": self.seeds_needed,
            "words": self.words,
        }


@dataclass(frozen=True)
class GroupReport:
    group: Group
    runs: list[Run]
    knobs: list[str]
    configs: list[ConfigResult] = field(default_factory=list)  # best first by the group's metric; unscored last

    @property
    def metric(self) -> str:
        return self.group.metric

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(str(r.status) for r in self.runs))

    @property
    def scored(self) -> list[ConfigResult]:
        return [c for c in self.configs if c.values.get(self.metric)]

    @property
    def leaders(self) -> list[ConfigResult]:
        """The configs with the best mean of the group's metric: one, or all of those tied exactly for it."""
        if not self.scored:
            return []
        top = float(np.mean(self.scored[0].values[self.metric]))
        return [c for c in self.scored if math.isclose(float(np.mean(c.values[self.metric])), top, rel_tol=1e-12)]

    @property
    def best(self) -> ConfigResult | None:
        """The config with the best mean; None before any has finished, and on an exact tie (no one best)."""
        leaders = self.leaders
        return leaders[0] if len(leaders) == 1 else None

    def mark(self, config: ConfigResult) -> str:
        """How a table of the configs marks `config`: "★ best", "= tied best" (an exact tie: no ★), or ""."""
        leaders = self.leaders
        if not any(c is config for c in leaders):
            return ""
        return "★ best" if len(leaders) == 1 else "= tied best"

    def verdict(self, first: ConfigResult | None = None, second: ConfigResult | None = None) -> Verdict | None:
        """The verdict between two configs (default: the two best); None until two configs have a finished run."""
        if first is None or second is None:
            if len(self.scored) < 2:
                return None
            first, second = self.scored[0], self.scored[1]
        return compare(first, second, self.metric)

    def to_dict(self) -> dict[str, Any]:
        verdict = self.verdict()
        return {
            "id": self.group.id,
            "name": self.group.name,
            "method": self.group.method,
            "metric": self.metric,
            "knobs": self.knobs,
            "stopped": self.group.stopped,
            "counts": self.counts,
            "configs": [c.to_dict() for c in self.configs],
            "best": self.best.params if self.best else None,
            "tied_best": [c.params for c in self.leaders] if len(self.leaders) > 1 else [],
            "verdict": verdict.to_dict() if verdict else None,
        }


def read_group(store: RunStore, group_id: str) -> GroupReport:
    """The group's runs gathered by config and ranked by the group's metric."""
    group = store.get_group(group_id)
    runs = sorted((r for r in store.list_runs(group_id=group_id) if not r.is_range_test), key=lambda r: r.id)
    knobs = list(group.spec.get("knobs") or differing_fields(runs))
    latest = store.latest_metrics([r.id for r in runs], names=METRICS)
    by_params: dict[tuple[Any, ...], list[Run]] = {}
    for run in runs:
        by_params.setdefault(tuple(run.config.get(k) for k in knobs), []).append(run)
    configs = [_config_result(dict(zip(knobs, key)), members, latest) for key, members in by_params.items()]
    sign = 1 if METRICS[group.metric].higher_is_better else -1

    def rank(c: ConfigResult) -> tuple[bool, float]:
        values = c.values.get(group.metric)
        return (not values, -sign * float(np.mean(values)) if values else 0.0)

    return GroupReport(group, runs, knobs, sorted(configs, key=rank))


def _config_result(params: dict[str, Any], runs: list[Run], latest: dict[int, dict[str, float]]) -> ConfigResult:
    values: dict[str, list[float]] = {m: [] for m in REPORTED}
    degenerate = 0
    for run in runs:
        if run.status == Status.DIVERGED:
            degenerate += 1
        if run.status != Status.FINISHED:
            continue
        scores = latest.get(run.id, {})
        for metric, value in scores.items():  # every metric the run recorded, last value
            if math.isfinite(value):
                values.setdefault(metric, []).append(value)
        majority = majority_share(run)
        if majority is not None and scores.get("accuracy", math.nan) <= majority + 1e-9:
            degenerate += 1
    return ConfigResult(params, runs, values, degenerate)


def majority_share(run: Run) -> float | None:
    """The accuracy of always answering the evaluation set's most common class (from the last confusion matrix)."""
    confusion = run.summary.confusion
    if not confusion:
        return None
    per_class = [sum(row) for row in confusion]
    return max(per_class) / sum(per_class) if sum(per_class) else None


def differing_fields(runs: list[Run]) -> list[str]:
    """The config fields (apart from the seed) that differ between runs: a group's knobs when it has no spec."""
    keys = sorted({k for r in runs for k in r.config} - {"seed"})
    return [k for k in keys if len({repr(r.config.get(k)) for r in runs}) > 1]


def _welch(a: ConfigResult, b: ConfigResult, metric: str) -> Verdict:
    from scipy import stats

    va, vb = a.values.get(metric, []), b.values.get(metric, [])
    sign = 1 if METRICS[metric].higher_is_better else -1
    if va and vb and sign * (np.mean(vb) - np.mean(va)) > 0:
        a, b, va, vb = b, a, vb, va
    scale = 100.0 if METRICS[metric].share else 1.0
    diff = (float(np.mean(va)) - float(np.mean(vb))) * scale if va and vb else math.nan
    if len(va) < 2 or len(vb) < 2:
        return Verdict(a, b, metric, diff, (math.nan, math.nan), False, max(2, len(va), len(vb)))
    if np.std(va) == 0 and np.std(vb) == 0:
        return Verdict(a, b, metric, diff, (diff, diff), diff != 0, None)
    with warnings.catch_warnings():  # near-identical seeds make scipy warn about precision: the interval is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = stats.ttest_ind(va, vb, equal_var=False).confidence_interval(0.95)
    low, high = float(interval.low) * scale, float(interval.high) * scale
    real = low > 0 or high < 0
    return Verdict(a, b, metric, diff, (low, high), real, None if real else seeds_to_settle(va, vb))


def compare(a: ConfigResult, b: ConfigResult, metric: str) -> Verdict:
    """Welch's t between two configs' finished runs on `metric`; the better one by mean comes first. Between two
    configs whose every run learned nothing there is nothing to settle: never real, no seeds advised."""
    verdict = _welch(a, b, metric)
    if a.learned_nothing and b.learned_nothing:
        return replace(verdict, real=False, seeds_needed=None)
    return verdict


def seeds_to_settle(va: list[float], vb: list[float]) -> int | None:
    """Seeds per config that would give an 80% chance of a 95% interval excluding zero, if the observed gap and
    spread are the truth (the power of Welch's test, from the noncentral t distribution); None past 100."""
    from scipy import stats

    gap = abs(float(np.mean(va)) - float(np.mean(vb)))
    spread = math.sqrt((np.var(va, ddof=1) + np.var(vb, ddof=1)) / 2)
    if gap == 0 or spread == 0:
        return None
    for n in range(max(len(va), len(vb)) + 1, MAX_SEEDS_ADVISED + 1):
        df = 2 * n - 2
        shift = gap / (spread * math.sqrt(2 / n))
        if stats.nct.sf(stats.t.ppf(0.975, df), df, shift) >= POWER:
            return n
    return None


def _json(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else value


# --- which knob mattered ----------------------------------------------------------------------------------------------
SEED_NOISE = "seed noise"  # the share of variation between runs of one config


def importance(report: GroupReport) -> tuple[str, dict[str, float]]:
    """(method, {knob: share}) of how much each knob moved the group's metric, over finished runs.

    A grid is balanced, so its main effects are exact and need no model: each knob's share of the variance between
    runs explained by its levels' means (η²), and the share left between seeds of one config (`seed noise`): the
    question a person really asks. Random draws and searches are not balanced and have continuous values; they use
    Optuna's PED-ANOVA evaluator over the configs' means (no scikit-learn needed, unlike fANOVA). Empty when there is
    nothing to explain (`importance_missing` says why): fewer than two configs with finished runs, no knob that
    differs between them, or every run scoring the same (PED-ANOVA would still name a knob)."""
    metric = report.metric
    scored = [c for c in report.scored if c.values.get(metric)]
    varied = [k for k in report.knobs if len({repr(c.params.get(k)) for c in scored}) > 1]
    if len(scored) < 2 or not varied or _all_same(scored, metric):
        return "", {}
    if report.group.method in ("grid", "runs"):
        return "main effects (η²)", _main_effects(scored, varied, metric)
    return "Optuna PED-ANOVA", _ped_anova(scored, varied, metric)


def _all_same(configs: list[ConfigResult], metric: str) -> bool:
    values = [v for c in configs for v in c.values.get(metric, [])]
    return bool(values) and max(values) == min(values)


def importance_missing(report: GroupReport) -> str:
    """Why there is no knob importance to show, in a sentence; "" when there is."""
    metric, name = report.metric, METRICS[report.metric].label
    scored = [c for c in report.scored if c.values.get(metric)]
    if len(scored) < 2:
        return f"Knob importance appears once two configs have finished runs ({len(scored)} so far)."
    if not [k for k in report.knobs if len({repr(c.params.get(k)) for c in scored}) > 1]:
        return "No knob differs between the configs with finished runs: there is nothing to tell apart."
    if _all_same(scored, metric):
        value = scored[0].values[metric][0]
        shown = f"{value:.1%}" if METRICS[metric].share else f"{value:.4g}"
        return f"Every run scored the same {name} ({shown}): no knob moved it, so none mattered more than another."
    return ""


def _main_effects(configs: list[ConfigResult], knobs: list[str], metric: str) -> dict[str, float]:
    rows = [(c.params, v) for c in configs for v in c.values[metric]]
    y = np.array([v for _, v in rows])
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return {}
    shares: dict[str, float] = {}
    for knob in knobs:
        levels: dict[str, list[float]] = {}
        for params, v in rows:
            levels.setdefault(repr(params.get(knob)), []).append(v)
        shares[knob] = sum(len(vs) * (np.mean(vs) - y.mean()) ** 2 for vs in levels.values()) / total
    within = sum(float(((np.array(c.values[metric]) - np.mean(c.values[metric])) ** 2).sum()) for c in configs)
    shares[SEED_NOISE] = within / total
    return shares


def _ped_anova(configs: list[ConfigResult], knobs: list[str], metric: str) -> dict[str, float]:
    import optuna

    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    return dict(optuna.importance.get_param_importances(study_of(configs, knobs, metric), evaluator=evaluator))


def as_study(report: GroupReport) -> Any:
    """The group as Optuna Dashboard would show it: a study with one trial per config that has finished runs (its
    mean over seeds: a search's trial), in the order the configs were launched, over the knobs that varied. None
    with fewer than two such configs, or no knob that varied."""
    scored = sorted((c for c in report.scored if c.values.get(report.metric)), key=lambda c: min(r.id for r in c.runs))
    varied = [k for k in report.knobs if len({repr(c.params.get(k)) for c in scored}) > 1]
    return study_of(scored, varied, report.metric) if len(scored) >= 2 and varied else None


def study_of(configs: list[ConfigResult], knobs: list[str], metric: str) -> Any:
    """An in-memory Optuna study of `configs`: each a trial, its value the mean of `metric` over its seeds, its params
    the `knobs` (numbers as ranges, log-scaled when they span a decade; anything else as choices)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    study = new_study(metric)
    dists: dict[str, Any] = {}
    for knob in knobs:
        values = [c.params.get(knob) for c in configs]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            low, high = float(min(values)), float(max(values))
            dists[knob] = FloatDistribution(low, high, log=low > 0 and high / low >= 10)
        else:
            dists[knob] = CategoricalDistribution(sorted({_choice(v) for v in values}, key=str))
    for c in configs:
        params = {k: _choice(c.params.get(k)) for k in knobs}
        params = {k: float(v) if isinstance(dists[k], FloatDistribution) else v for k, v in params.items()}
        study.add_trial(create_trial(value=float(np.mean(c.values[metric])), params=params, distributions=dists))
    return study


def _choice(value: Any) -> Any:
    """A knob value Optuna can hold as a choice (None becomes the word the app shows)."""
    return "default" if value is None else value
