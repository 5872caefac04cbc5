"""The estimate against hardware: kernel_batch's guest instructions and its estimated cycles (the
stated model, lab/results/costmodel.py), each set against the kernel bench's published ns
(lab/data/reference_hooks.yaml) as orders and scale-free ratios, never as one figure:

- Spearman's rho and Kendall's tau over the attach types both sides have;
- the pairs of attach types out of order (of n(n-1)/2);
- each attach type's ratio error: (its figure / raw_tp's) over (published / published raw_tp) - 1;
- kretprobe / raw_tp on each side (published 18.2);
- the ablation: the estimate without each event class in turn (what each class adds to the order).

Instructions are in guest instructions, the estimate in model cycles: separate columns, separate
correlations. Reads the rows frame; imports no report code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import pandas as pd
from scipy import stats as sps

from lab.analysis.published import reference_hooks
from lab.core import units
from lab.results.costmodel import INSN, model

ANCHOR = "raw_tp"
KRET = "kretprobe"  # the headline ratio kretprobe / raw_tp (the published 18.2: hardware prices returns)
EST = "est_cycles"
LABEL = "estimated cost (model, emulated)"


@dataclass
class Fit:
    figure: str  # "instructions" or LABEL (or "... without CLASS")
    unit: str  # units.INSN or units.MODEL
    hooks: list[str]
    rho: float | None
    tau: float | None
    out_of_order: list[tuple[str, str]]
    pairs: int
    ratio_error: dict[str, float] = field(default_factory=dict)
    kret_raw: float | None = None


def kernel_batch(df: pd.DataFrame) -> pd.DataFrame:
    """Ok kernel_batch rows of the empty program, in guest instructions."""
    if df.empty or "method" not in df.columns:
        return df.iloc[0:0]
    ok = df[(df["suite"] == "hooks") & (df["method"] == "kernel_batch") & (df["variant"] == "empty")
            & (df["status"] == "ok")]
    return ok[[units.of({"figure_unit": u}) == units.INSN for u in ok["figure_unit"]]]


def figures(rows: pd.DataFrame, column: str) -> dict[str, float]:
    if column not in rows.columns:
        return {}
    ok = rows[rows[column].notna()]
    return {str(h): float(v) for h, v in ok.groupby("hook")[column].median().items()}


def fit(figure: str, unit: str, mine: dict[str, float], theirs: dict[str, float]) -> Fit:
    hooks = sorted(set(mine) & set(theirs), key=lambda h: mine[h])
    a, b = [mine[h] for h in hooks], [theirs[h] for h in hooks]
    rho = float(sps.spearmanr(a, b).statistic) if len(hooks) >= 3 else None
    tau = float(sps.kendalltau(a, b).statistic) if len(hooks) >= 3 else None
    bad = [(x, y) for x, y in combinations(hooks, 2) if (mine[x] - mine[y]) * (theirs[x] - theirs[y]) < 0]
    out = Fit(figure, unit, hooks, rho, tau, bad, len(hooks) * (len(hooks) - 1) // 2)
    if ANCHOR in hooks and mine[ANCHOR] > 0 and theirs[ANCHOR] > 0:
        out.ratio_error = {h: (mine[h] / mine[ANCHOR]) / (theirs[h] / theirs[ANCHOR]) - 1 for h in hooks if h != ANCHOR}
        if KRET in hooks:
            out.kret_raw = mine[KRET] / mine[ANCHOR]
    return out


def fits(df: pd.DataFrame, group: str | None = None) -> list[Fit]:
    """Instructions, the estimate, and the estimate without each class, against the published table,
    for one target group (the first with kernel_batch rows if None)."""
    rows = kernel_batch(df)
    if rows.empty:
        return []
    group = group or str(rows["group"].iloc[0])
    rows = rows[rows["group"] == group]
    published = reference_hooks()["added_ns"]
    out = [fit("instructions", units.INSN, figures(rows, "ns_median"), published)]
    est = figures(rows, EST)
    if not est:
        return out
    out.append(fit(LABEL, units.MODEL, est, published))
    m = model()
    counts = {n: figures(rows, f"ev_{n}") for n in [INSN, *m.weights]}
    hooks = [h for h in est if all(h in c for c in counts.values() if c)]
    for cls in m.weights:
        if not counts.get(cls) or not any(counts[cls].get(h) for h in hooks):
            continue  # a class that never occurs adds nothing
        without = {h: m.estimate({n: c.get(h, 0.0) for n, c in counts.items()}, without=cls) for h in hooks}
        out.append(fit(f"{LABEL} without {cls}", units.MODEL, without, published))
    return out


def published_ratio() -> float:
    p = reference_hooks()["added_ns"]
    return p["kretprobe"] / p[ANCHOR]


def markdown(items: list[Fit]) -> str:
    if not items:
        return ""
    lines = ["| figure (unit) | Spearman rho | Kendall tau | pairs out of order | kretprobe/raw_tp "
             f"(published {published_ratio():.1f}) | ratio error per attach type |", "|---|---|---|---|---|---|"]
    for f in items:
        rho = f"{f.rho:+.3f}" if f.rho is not None else "-"
        tau = f"{f.tau:+.3f}" if f.tau is not None else "-"
        bad = f"{len(f.out_of_order)} of {f.pairs}" + (
            ": " + ", ".join(f"{a}/{b}" for a, b in f.out_of_order) if f.out_of_order else "")
        kr = f"{f.kret_raw:.1f}" if f.kret_raw is not None else "-"
        err = ", ".join(f"{h} {e * 100:+.0f}%" for h, e in f.ratio_error.items()) or "-"
        lines.append(f"| {f.figure} ({units.label(f.unit)}) | {rho} | {tau} | {bad} | {kr} | {err} |")
    return "\n".join(lines)
