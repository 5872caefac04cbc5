"""Orderings, not values, across units: the kernel_batch cost of each attach type in guest
instructions (icount) set beside the host's own kernel_batch nanoseconds and beside the kernel
bench's published figures (lab/data/reference_hooks.yaml, ns on real hardware). Instructions and
nanoseconds are never put in one figure: what is compared is the rank order (Spearman's rho over
the attach types both sides have) and, within each side, the ratio of each hook to raw_tp.

Reads the rows frame (lab/results/aggregate.py) and the published figures (lab/analysis/published.py); imports no
report code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
from scipy import stats as sps

from lab.agent import mitigations
from lab.analysis.published import reference_hooks
from lab.core import units

ANCHOR = "raw_tp"  # each side's ratios are to its own raw_tp figure


@dataclass
class Ordering:
    target: str  # the instruction-counted target group
    versus: str  # "published (kernel bench, x86 hardware, ns)" or a host group (ns)
    hooks: list[str]  # attach types both sides have, cheapest first on the target
    rho: float | None  # Spearman rank correlation over `hooks` (None under three hooks)
    ratios: dict[str, tuple[float, float]]  # hook -> (target / its raw_tp, versus / its raw_tp)
    unit: str = units.INSN  # the target's figure: guest instructions, or the estimate (units.MODEL)
    note: str = ""  # the two sides ran with different mitigations (or the target's are not recorded)


def _costs(df: pd.DataFrame, column: str = "ns_median") -> dict[str, dict[str, float]]:
    """{group: {hook: median of `column`}} of ok kernel_batch rows of the empty program."""
    if df.empty or "method" not in df.columns or column not in df.columns:
        return {}
    ok = df[(df["suite"] == "hooks") & (df["method"] == "kernel_batch") & (df["variant"] == "empty")
            & (df["status"] == "ok") & df[column].notna()]
    return {str(g): {str(h): float(v) for h, v in rows.groupby("hook")[column].median().items()}
            for g, rows in ok.groupby("group")}


def _ordering(target: str, mine: dict[str, float], versus: str, theirs: dict[str, float]) -> Ordering:
    common = sorted(set(mine) & set(theirs), key=lambda h: mine[h])
    rho = float(sps.spearmanr([mine[h] for h in common], [theirs[h] for h in common]).statistic) \
        if len(common) >= 3 else None
    ratios = {}
    if ANCHOR in common and mine[ANCHOR] > 0 and theirs[ANCHOR] > 0:
        ratios = {h: (mine[h] / mine[ANCHOR], theirs[h] / theirs[ANCHOR]) for h in common}
    return Ordering(target, versus, common, rho, ratios)


def orderings(df: pd.DataFrame) -> list[Ordering]:
    """For every instruction-counted target: its order against the published figures and against
    each host target's ns (the nearest thing to hardware this lab measures)."""
    costs = _costs(df)
    if not costs:
        return []
    unit_of = {str(g): units.of({"figure_unit": u}) for g, u in df.groupby("group")["figure_unit"].first().items()}
    accel_of = {str(g): str(a) for g, a in df.groupby("group")["accelerator"].first().items()}
    published = reference_hooks()["added_ns"]
    setting = _mitigations(df)
    hosts = [g for g in costs if accel_of.get(g) == "host" and unit_of.get(g) == units.NS]
    estimates = _costs(df, "est_cycles")
    out = []
    for g, mine in costs.items():
        if unit_of.get(g) != units.INSN:
            continue
        est = estimates.get(g)
        target = f"{g} [{units.label(units.MODEL)}]"
        for name, figs, unit in [(g, mine, units.INSN)] + ([(target, est, units.MODEL)] if est else []):
            # the stated model's estimate beside the instructions: its own order, its own ratios
            out.append(replace(_ordering(name, figs, "published (kernel bench, x86 hardware, ns)", published),
                               unit=unit, note=_differ(setting.get(g), PUBLISHED_MITIGATIONS)))
            out.extend(replace(_ordering(name, figs, f"{h} (ns)", costs[h]), unit=unit,
                               note=_differ(setting.get(g), setting.get(h))) for h in hosts)
    return out


PUBLISHED_MITIGATIONS = "off"  # lab/data/reference_hooks.yaml: the cover letter's machine


def _mitigations(df: pd.DataFrame) -> dict[str, str | None]:
    """Each group's mitigations setting from its rows (None: rows from before it was recorded)."""
    if "mitigations" not in df.columns:
        return {}
    return {str(g): (str(v.dropna().iloc[0]) if not v.dropna().empty else None)
            for g, v in df.groupby("group")["mitigations"]}


def _differ(a: str | None, b: str | None) -> str:
    if a is None:
        return "the target's mitigations are not recorded (rows from before they were)"
    return mitigations.differ(a, b) or ""


def markdown(items: list[Ordering]) -> str:
    """One table: target, compared with, the order on the target, rho, and the ratios to raw_tp."""
    if not items:
        return ""
    lines = ["| target (guest instructions; the estimate where named) | compared with | order on the target | "
             "Spearman rho | "
             f"each hook / {ANCHOR}: target vs other |", "|---|---|---|---|---|"]
    for o in items:
        rho = f"{o.rho:+.2f}" if o.rho is not None else "- (under 3 hooks)"
        ratios = ", ".join(f"{h} {a:.2f} vs {b:.2f}" for h, (a, b) in o.ratios.items() if h != ANCHOR) or "-"
        versus = f"{o.versus} ({o.note})" if o.note else o.versus
        lines.append(f"| {o.target} | {versus} | {' < '.join(o.hooks)} | {rho} | {ratios} |")
    return "\n".join(lines)
