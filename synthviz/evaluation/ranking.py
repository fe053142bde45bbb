"""Which map to trust, with its uncertainty: the methods ranked per metric and family with bootstrap
95 % confidence intervals over the images, as ``ranks.csv`` and ``summary.md``.

The images are resampled with replacement (the same resample for every method: the comparison is
paired) and each method's mean recomputed, :data:`REPS` times; the 2.5th and 97.5th percentiles
are the interval. Two methods are *not distinguishable* on a metric when the interval of their
mean difference holds 0. A method's rank is 1 + the number of methods distinguishably better, so
indistinguishable methods share a rank. A family's best method is the one with the lowest mean
rank over the family's metrics (random references excluded: they are what the best must beat).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..io import csv_text
from .metrics import FAMILIES, metric_info
from .metrics.select import column
from .references import is_random
from .run import COLUMNS, Evaluation

REPS = 1000
LEVEL = 0.95
RANK_COLUMNS = ["family", "metric", "method", "mean", "low", "high", "rank"]
# the built-in columns of evaluate: (family, higher is better)
BUILTIN = {"deletion_auc": ("faithfulness", False), "insertion_auc": ("faithfulness", True),
           "road_morf": ("faithfulness", False), "road_lerf": ("faithfulness", True),
           "infidelity": ("faithfulness", False), "max_sensitivity": ("robustness", False),
           "pointing_game": ("localisation", True), "iou": ("localisation", True), "gini": ("complexity", True),
           **{f"random_{k}_{s}": ("randomisation", False) for k in ("top", "mid", "all") for s in ("spearman", "ssim")},
           "invariance_change": ("axiomatic", False), "invariance_spearman": ("axiomatic", True)}


@dataclass
class Ranking:
    """The outcome of :func:`rank`.

    Attributes:
        rows: one dict per (metric, method), keys :data:`RANK_COLUMNS` (low/high None under 2 images).
        pairs: {(metric, a, b): (mean, low, high)} the difference a − b, oriented so > 0 favours a.
        facts: {metric column: (family, higher_is_better)} of the metrics ranked.
        images: how many images; ``reps``: bootstrap resamples.
    """

    rows: list[dict]
    pairs: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)
    images: int = 0
    reps: int = REPS

    def indistinguishable(self, metric: str) -> list[tuple[str, str]]:
        """The pairs of methods whose difference on ``metric`` has an interval holding 0."""
        return [(a, b) for (m, a, b), (_, lo, hi) in self.pairs.items()
                if m == metric and a < b and not (lo > 0 or hi < 0)]


def metric_facts(ev: Evaluation) -> dict[str, tuple[str, bool]]:
    """{column: (family, higher_is_better)} of every column of ``ev`` that holds a value, by family."""
    facts = dict(BUILTIN)
    facts.update({column(m, COLUMNS): (metric_info(m).family, metric_info(m).higher_is_better) for m in ev.metrics})
    measured = {c for r in ev.rows for c, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                and v is not None and math.isfinite(float(v))}
    order = {f: i for i, f in enumerate(FAMILIES)}
    cols = [c for c in ev.columns if c in facts and c in measured]
    return {c: facts[c] for c in sorted(cols, key=lambda c: order[facts[c][0]])}


def values(ev: Evaluation, col: str) -> tuple[list[str], np.ndarray]:
    """(the images, (M methods, N images) values of ``col``, NaN where not measured)."""
    images = list(ev.images)
    table = np.full((len(ev.methods), len(images)), np.nan)
    where = {(r["method"], r["image"]): r.get(col) for r in ev.rows}
    for i, m in enumerate(ev.methods):
        for j, image in enumerate(images):
            v = where.get((m, image))
            table[i, j] = float(v) if v is not None else np.nan
    return images, table


def bootstrap(table: np.ndarray, reps: int = REPS, seed: int = 0, level: float = LEVEL) -> tuple[np.ndarray, ...]:
    """Paired percentile bootstrap of the means of (M, N) values over N images (NaN ignored).

    Returns (means (M,), low (M,), high (M,), diff (M, M, 3)): ``diff[i, j]`` the mean, low and high
    of method i minus method j over the images both measured. Intervals are NaN under 2 images."""
    m, n = table.shape
    idx = np.random.default_rng(seed).integers(0, n, (reps, n))
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a method with no value at all: NaN mean
        means = np.nanmean(table, 1)
        boot = np.nanmean(table[:, idx], 2)  # (M, reps)
        low, high = np.nanpercentile(boot, q, axis=1)
        diff = np.full((m, m, 3), np.nan)
        for i in range(m):
            for j in range(m):
                d = table[i] - table[j]
                if i != j and np.isfinite(d).sum() >= 1:
                    diff[i, j, 0] = np.nanmean(d)
                    diff[i, j, 1:] = np.nanpercentile(np.nanmean(d[idx], 1), q)
    counts = np.isfinite(table).sum(1)
    low[counts < 2], high[counts < 2] = np.nan, np.nan
    for i in range(m):
        both = np.isfinite(table[i]) & np.isfinite(table)
        diff[i, both.sum(1) < 2, 1:] = np.nan
    return means, low, high, diff


def rank(ev: Evaluation, reps: int = REPS, seed: int = 0) -> Ranking:
    """Every measured metric of ``ev`` (built-in columns and registered metrics): each method's mean,
    its 95 % interval and its rank (1 + the methods distinguishably better)."""
    out = Ranking(rows=[], facts=metric_facts(ev), images=len(ev.images), reps=reps)
    for col, (family, higher) in out.facts.items():
        _, table = values(ev, col)
        means, low, high, diff = bootstrap(table, reps, seed)
        sign = 1.0 if higher else -1.0
        for i, method in enumerate(ev.methods):
            for j, other in enumerate(ev.methods):
                if i != j and math.isfinite(diff[i, j, 0]):
                    lo, hi = sorted((sign * diff[i, j, 1], sign * diff[i, j, 2]))
                    out.pairs[(col, method, other)] = (sign * diff[i, j, 0], lo, hi)
        for i, method in enumerate(ev.methods):
            if not math.isfinite(means[i]):
                continue
            better = sum(1 for other in ev.methods if (col, other, method) in out.pairs
                         and out.pairs[(col, other, method)][1] > 0)
            out.rows.append({"family": family, "metric": col, "method": method, "mean": float(means[i]),
                             "low": _num(low[i]), "high": _num(high[i]), "rank": 1 + better})
    return out


def _num(v) -> float | None:
    return float(v) if math.isfinite(float(v)) else None


def ranks_csv(ranking: Ranking) -> str:
    """The CSV text of :data:`RANK_COLUMNS`, one row per metric and method."""
    return csv_text(RANK_COLUMNS, (["" if r[c] is None else f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]
                                    for c in RANK_COLUMNS] for r in ranking.rows))


def best_per_family(ranking: Ranking) -> dict[str, tuple[str, float]]:
    """{family: (the method with the lowest mean rank over the family's metrics, that mean rank)};
    random references are not candidates."""
    out = {}
    for family in dict.fromkeys(f for f, _ in ranking.facts.values()):
        ranks: dict[str, list[int]] = {}
        for r in ranking.rows:
            if r["family"] == family and not is_random(r["method"]):
                ranks.setdefault(r["method"], []).append(r["rank"])
        if ranks:
            method = min(ranks, key=lambda m: (sum(ranks[m]) / len(ranks[m]), -len(ranks[m])))
            out[family] = (method, sum(ranks[method]) / len(ranks[method]))
    return out


def _mean(r: dict) -> str:
    interval = f" [{r['low']:.3g}, {r['high']:.3g}]" if r["low"] is not None else ""
    return f"{r['mean']:.3g}{interval}"


def _gap(ranking: Ranking, col: str, a: str, b: str | None) -> str:
    """"better by 0.11 [0.05, 0.17]" / "not distinguishable (...)": a against b on ``col``."""
    if b is None or (col, a, b) not in ranking.pairs:
        return "–"
    mean, lo, hi = ranking.pairs[(col, a, b)]
    interval = f" [{lo:.3g}, {hi:.3g}]" if math.isfinite(lo) else ""
    if not math.isfinite(lo) or lo <= 0 <= hi:
        return f"not distinguishable from {b} ({mean:+.3g}{interval})"
    if mean < 0:  # the size of the gap, and its interval, as positive numbers
        interval = f" [{-hi:.3g}, {-lo:.3g}]"
    return f"{'better' if mean > 0 else 'worse'} than {b} by {abs(mean):.3g}{interval}"


def family_section(ev: Evaluation, ranking: Ranking, family: str, best: str, mean_rank: float) -> list[str]:
    """The Markdown of one family: its best method, then per metric by how much it leads."""
    cols = [c for c, (f, _) in ranking.facts.items() if f == family]
    lines = [f"## {family}", "", f"Best: **{best}** (mean rank {mean_rank:.2g} over {len(cols)} metric"
             f"{'s' if len(cols) > 1 else ''}).", "",
             f"| metric | better | {best} | against the strongest other method | against its random reference | "
             f"not distinguishable from {best} |",
             "|---|---|---|---|---|---|"]
    for col in cols:
        rows = {r["method"]: r for r in ranking.rows if r["metric"] == col}
        if best not in rows:
            continue
        higher = ranking.facts[col][1]
        others = sorted((m for m in rows if m != best and not is_random(m)),
                        key=lambda m: -rows[m]["mean"] if higher else rows[m]["mean"])
        runner = others[0] if others else None
        ties = ", ".join(b if a == best else a for a, b in ranking.indistinguishable(col) if best in (a, b)) or "–"
        lines.append(f"| {col} | {'higher' if higher else 'lower'} | {_mean(rows[best])} | "
                     f"{_gap(ranking, col, best, runner)} | {_gap(ranking, col, best, ev.matched.get(best))} | {ties} |")
    return lines + [""]


def sanity_lines(ev: Evaluation) -> list[str]:
    """The verdicts of the randomization and invariance checks, per method (those that ran)."""
    checks = [("randomisation", "random_all_spearman", "map stays similar with every layer randomized"),
              ("input invariance", "invariance_change", "not input invariant")]
    lines = []
    for title, col, note in checks:
        verdicts = []
        for method in (m for m in ev.methods if not is_random(m)):
            rows = [r for r in ev.rows if r["method"] == method and r.get(col) is not None]
            if rows:
                failed = sum(note in (r["notes"] or "") for r in rows)
                verdicts.append(f"{method} {'fails' if failed else 'passes'}"
                                + (f" ({note} on {failed} of {len(rows)} images)" if failed else ""))
        if verdicts:
            lines.append(f"- {title}: " + "; ".join(verdicts))
    return (["## Sanity checks", "", *lines, ""]) if lines else []


def summary_md(ev: Evaluation, ranking: Ranking) -> str:
    """``summary.md``: per family the best method and by how much (against the runner-up and its own
    random reference, with 95 % intervals), the methods not distinguishable, and the sanity verdicts."""
    lines = [f"# Which explanation to trust: {ev.model}", "",
             f"{ranking.images} image{'s' if ranking.images != 1 else ''}; methods {', '.join(ev.methods)}. "
             f"Means with {LEVEL:.0%} bootstrap intervals over the images ({ranking.reps} paired resamples); "
             "two methods are not distinguishable when the interval of their difference holds 0"
             + (" (one image: no intervals)." if ranking.images < 2 else "."), ""]
    lines += [f"- {text}" for text in ev.references.values()] + ([""] if ev.references else [])
    best = best_per_family(ranking)
    if not best:
        lines += ["No method was scored (see notes in metrics.csv).", ""]
    for family, (method, mean_rank) in best.items():
        lines += family_section(ev, ranking, family, method, mean_rank)
    return "\n".join(lines + sanity_lines(ev))
