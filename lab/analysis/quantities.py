"""What a claim part measures, in words: the accounting regime of its rows (a row field such as
`memlock_regime`, in the words of lab/agent/maps/charge.py), the method that cannot see a
difference in some regime (a part's `blind`: "not measurable by X on this kernel", never "does not
hold"), and a part's one-line brief for the claim's reason. Pure; lab/analysis/claims.py calls it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lab.agent.maps.charge import REGIME_WORDS
from lab.analysis.verdicts import NOT_MEASURABLE
from lab.results.selectors import Concrete, select


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
