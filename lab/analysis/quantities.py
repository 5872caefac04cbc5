"""What a claim part measures, in words: the accounting regime of its rows (a row field such as
`memlock_regime`, in the words of lab/agent/maps/charge.py), the method that cannot see a
difference in some regime (a part's `blind`: "not measurable by X on this kernel", never "does not
hold"), a part's one-line brief for the claim's reason, which parts decide (fallback), a part that
grows with the vCPU count, and a claim in emulation decided on the estimate with the instructions
beside it. Pure; lab/analysis/claims.py calls it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lab.agent.maps.charge import REGIME_WORDS
from lab.analysis.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURABLE, ORDER
from lab.core import units
from lab.results import stats
from lab.results.selectors import Concrete, row_id, select


def regimes(spec: Any, g: pd.DataFrame, cp: Concrete) -> list[str]:
    """The accounting regimes (spec.regime, a row field) of the ok rows on the part's sides."""
    if not spec.regime or spec.regime not in g:
        return []
    found: list[str] = []
    for sel in (cp.a, cp.b):
        if sel is None:
            continue
        rows = select(g, sel)
        if not rows.empty:
            found += [str(v) for v in rows[rows["status"] == "ok"][spec.regime].dropna()]
    return list(dict.fromkeys(found))


def blind(part: Any, spec: Any, g: pd.DataFrame, cp: Concrete) -> bool:
    """Name the part's regimes; True (and the part not measurable) when its method cannot see the
    difference in every one of them: a figure that by construction does not change there."""
    found = regimes(spec, g, cp)
    part.regime = "; ".join(REGIME_WORDS.get(r, r) for r in found)
    vcpus = int(g["vcpus"].max()) if "vcpus" in g and not g.empty else 0
    # a key REGIME, or REGIME@Nvcpu: blind in that regime on guests of N vCPUs only
    methods = [spec.blind.get(r) or spec.blind.get(f"{r}@{vcpus}vcpu") for r in found]
    if not found or not all(methods):
        return False
    part.verdict = NOT_MEASURABLE
    sides = f"a {part.a} vs b {part.b}" if part.b else part.a
    part.reason = f"{sides}: not measurable by {methods[0]} on this kernel ({part.regime})"
    part.summary = f"not measurable by {methods[0]} on this kernel"
    return True


def brief(p: Any) -> str:
    """'375,808 B charged vs 923,648 B charged (-59%): holds' (a short name first if the part has one)."""
    spec = p._spec
    name = f"{spec.short} " if spec and spec.short else ""  # without one, the sides' unit names the quantity
    if p.a and p.b:
        eff = f" ({p.effect:+.0f}%)" if p.effect is not None and not math.isnan(p.effect) else ""
        verdict = p.summary if p.summary.startswith("not measurable by") else p.verdict
        return f"{name}{p.a} vs {p.b}{eff}: {verdict}"
    return f"{name or p.name + ' '}{p.summary or p.verdict}"


def briefs(parts: list[Any]) -> str:
    return ", ".join(brief(p) for p in parts)


def deciding(parts: list[Any]) -> list[Any]:
    """The parts that decide the claim: role decides, or, when none of them is measurable and a
    fallback part is (e.g. no memory cgroup: the memlock reported), the fallback parts."""
    out = [p for p in parts if p.role == "decides"]
    fallback = [p for p in parts if p.role == "fallback"]
    if out and all(p.verdict == NOT_MEASURABLE for p in out) and any(p.verdict != NOT_MEASURABLE for p in fallback):
        return fallback
    return out


EST_LABEL = "estimated cost (model, emulated)"


def with_estimate(parts: list[Any], verdict: str, reason: str) -> tuple[str, str, str]:
    """In emulation, a claim with parts of role "estimate" that were measured (the event-count plugin
    ran) is decided on the estimate, the instruction verdict beside it; where they disagree it is
    inconclusive and says why. Without a measured estimate: the instruction verdict, unchanged."""
    est = [p for p in parts if p.role == "estimate" and p.figure_unit == units.MODEL]
    if not est:
        return verdict, reason, units.INSN
    v_est = next(v for v in ORDER if any(p.verdict == v for p in est))
    why = "; ".join(f"{p.name}: {p.reason}" for p in est if p.verdict == v_est)
    if v_est == verdict:
        return verdict, f"{EST_LABEL}: {v_est} ({why}); in guest instructions too: {reason}", units.MODEL
    return INCONCLUSIVE, (f"{EST_LABEL} says {v_est} ({why}), guest instructions say {verdict} ({reason}): they "
                          "disagree, so the events the model prices above one instruction decide the order, and the "
                          "model is not validated enough to overrule the count"), units.MODEL


def grows(part: Any, spec: Any, g: pd.DataFrame, cp: Concrete, everything: pd.DataFrame, metric: Any) -> Any:
    """Exact values of one selector across the targets of this group's kernel with other vCPU counts."""
    kernel, sel = g["kernel"].iloc[0], cp.a
    rows = select(everything[everything["kernel"] == kernel], sel)
    ok = rows[rows["status"] == "ok"] if not rows.empty else rows
    part.rows_a = [row_id(r) for _, r in ok.iterrows()]
    part.test, part.unit = "exact", "vCPU counts"
    column = metric.column
    if ok.empty:
        part.reason = f"no ok rows match {', '.join(f'{k}={v}' for k, v in sel.items())}"
        return part
    if column not in ok or ok[column].isna().all():
        part.reason = f"its rows carry no `{column}`"
        return part
    by = ok.dropna(subset=[column]).groupby("vcpus")[column].median().sort_index()
    part.n_a = len(by)
    part.a = ", ".join(f"{int(c)} vCPU: {v:,.0f} {metric.unit}" for c, v in by.items())
    if blind(part, spec, g, cp):
        return part
    if len(by) < 2:
        part.reason = (f"one vCPU count ({int(by.index[0])}) measured for kernel {kernel}"
                       + (f"; would decide: {spec.decide}" if spec.decide else ""))
        return part
    steps = [stats.relative_pct(b, a) for a, b in zip(by.values, by.values[1:], strict=False)]
    part.effect = min(steps)
    grows = all(s >= spec.min_effect for s in steps)
    part.verdict = HOLDS if grows else FAILS
    part.reason = f"{part.a}: " + ("rises with every step" if grows else "does not rise with every step")
    return part
