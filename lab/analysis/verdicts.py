"""Deciding measured claim parts (lab/analysis/claims.py measures them). Pure.

One decision p-value per part: the test in the claimed direction (one-sided Mann-Whitney for "a below
b", TOST for "a equals b within the margin", the larger of the two one-sided signed-rank p-values for
"a inside (low, high)": an intersection-union test). "Does not hold" has its own test, also one per
part: the opposite direction, or TOST when a "cheaper" part's effect is inside its margin, or a
difference for "equal", or the bound the median lies beyond.

The family is one claim on one target, and it is fixed: every part of the claim that is decided by a
p-value there (asked-for parts with their rows missing count too, as p = 1), and nothing else: no
other claim, no other suite, no other target. Correction: Holm. A claim is a conjunction whose parts
must each hold, so a wrong "holds" on any part makes the claim wrong: that is the family-wise error,
which Holm controls (at no power cost against Bonferroni); Benjamini-Hochberg controls the share of
false discoveries among many, which suits `results.compare` (dozens of unrelated pairs), not a
verdict of 1 to 6 parts. "holds" and "does not hold" are corrected as two families of the same size.

Before any test, a part whose sample sizes cannot reach significance in its family (the smallest
p-value its test can give, 1 / C(n_a + n_b, n_a) for Mann-Whitney and 1 / 2^n for signed-rank, is not
below alpha / family size) says `inconclusive: needs >= N trials per side`.

Parts in guest instructions (lab/analysis/claims.py `_instructions`) have no p-value: the counts are exact
within the method's determinism tolerance (lab/agent/hooks/gates.py ICOUNT_TOLERANCE, checked on every
row by lab/results/readgates.py), so a is compared with b as a value; the effect counts when it is at least the
part's min_effect and at least the two sides' tolerances together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lab.results import stats

HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURABLE = "holds", "does not hold", "inconclusive", "not measurable here"
ORDER = (FAILS, NOT_MEASURABLE, INCONCLUSIVE, HOLDS)  # a claim takes the first verdict any deciding part has
TCG_NOTE = "pipeline checked, timing not representative"


def p_values(spec: Any, a: list[float], b: list[float] | None, effect: float | None,
             scale: float) -> tuple[tuple[float | None, str], tuple[float | None, str]]:
    """((decision p, its test), (does-not-hold p, its test)) of one measured time part."""
    test = spec.test
    if spec.relation == "between":
        lo, hi = spec.bounds or (0.0, math.inf)
        up, down = stats.p_against(a, lo, "greater", test), stats.p_against(a, hi, "less", test)
        p = None if up is None or down is None else max(up, down)
        med = stats.median_ci(a).median
        above = math.isfinite(hi) and med > (lo + hi) / 2
        return (p, "inside"), ((stats.p_against(a, hi, "greater", test), "above") if above
                               else (stats.p_against(a, lo, "less", test), "below"))
    assert b is not None
    margin = (spec.margin or 0.0) * scale
    if spec.relation == "equal":
        return ((stats.p_equivalent(a, b, margin, test), "equivalence"),
                (stats.p_difference(a, b, test), "difference"))
    p = stats.p_difference(a, b, test, "less")
    if margin and effect is not None and not math.isnan(effect) and abs(effect) < (spec.margin or 0.0):
        return (p, "less"), (stats.p_equivalent(a, b, margin, test), "equivalence")
    return (p, "less"), (stats.p_difference(a, b, test, "greater"), "opposite")


def _in_family(part: Any) -> bool:
    spec = part._spec
    return bool(spec is not None and spec.timing and spec.relation != "grows_with_vcpus"
                and not part.test.startswith("exact") and not part.reason.startswith("TCG"))


def decide_claim(parts: Sequence[Any], alpha: float = stats.ALPHA) -> None:
    """Decide every part of one claim on one target (Holm within each role's fixed family)."""
    for role in ("decides", "context"):
        family = [p for p in parts if p.role == role and _in_family(p)]
        qs = stats.holm([p._p[0] if p._p else None for p in family])
        qn = stats.holm([p._p_not[0] if p._p_not else None for p in family])
        for p, q, q_not in zip(family, qs, qn, strict=True):
            p.q, p._q_not, p.family = q, q_not, len(family)
    for p in parts:
        decide(p, alpha)


def _fmt_p(p: float | None, q: float | None, k: int) -> str:
    if p is None:
        return "no test possible"
    return f"p={p:.2g}, Holm q={q:.2g} in a family of {k}" if q is not None else f"p={p:.2g}"


def _needs(part: Any, alpha: float) -> str:
    """'' or why the sample sizes cannot reach significance in the part's family."""
    spec, k = part._spec, max(part.family, 1)
    two = spec.relation != "between"
    floor = stats.smallest_p("mannwhitney" if two and spec.test != "welch" else spec.test, part.n_a,
                             part.n_b if two else 0)
    if floor is None or floor < alpha / k:
        return ""
    n = stats.trials_needed("mannwhitney" if two else spec.test, alpha / k, two)
    per = "per side" if two else ""
    return (f"needs >= {n} {part.unit or 'trials'} {per}".rstrip() + f" (now {part.n_a}"
            + (f" vs {part.n_b}" if two else "") + f"; the smallest p its test can give, {floor:.2g}, is not "
            f"below {alpha:g}/{k})")


def decide(part: Any, alpha: float = stats.ALPHA) -> Any:
    """The verdict of one measured part (see the module docstring)."""
    if part.verdict:
        return part
    spec = part._spec
    e, me = part.effect, spec.min_effect
    unit = "points" if part.effect_unit == "points" else "%"
    eff = f"{e:+.1f} {unit}" if e is not None and not math.isnan(e) else "-"
    sides = f"a {part.a} vs b {part.b}" if part.b else f"{part.a}"
    if part.test == "exact":  # bytes
        part.verdict = HOLDS if e is not None and e <= -me else FAILS
        what = ("bytes charged per map, to the rows' mem_charged_resolution" if spec.metric == "charged"
                else "exact bytes")
        part.reason = f"{sides} ({eff}; {what}, a must be below b by at least {me:g}%)"
        return part
    if part._exact is not None:
        return _decide_instructions(part, sides, eff)
    p, kind = part._p or (None, "")
    p_not, kind_not = part._p_not or (None, "")
    part.p = p
    ok, no = part.q is not None and part.q < alpha, part._q_not is not None and part._q_not < alpha
    needs = _needs(part, alpha)
    hint = needs or (f"more trials (now {part.n_a} vs {part.n_b} {part.unit})" if part.b
                     else f"more trials (now {part.n_a} {part.unit})")
    hint += f"; {spec.decide}" if spec.decide else ""
    test_txt = _fmt_p(p, part.q, part.family)
    not_txt = _fmt_p(p_not, part._q_not, part.family)
    if needs:
        part.verdict, why = INCONCLUSIVE, f"{eff}: {needs}" + (f"; would decide: {spec.decide}" if spec.decide else "")
    elif spec.relation == "between":
        lo, hi = spec.bounds or (0.0, math.inf)
        if no:
            part.verdict, why = FAILS, f"significantly {kind_not} the range ({lo:g}, {hi:g}) ({not_txt})"
        elif ok:
            part.verdict, why = HOLDS, f"significantly inside ({lo:g}, {hi:g}) ({test_txt})"
        else:
            part.verdict, why = INCONCLUSIVE, f"not shown inside ({lo:g}, {hi:g}) ({test_txt}); would decide: {hint}"
    elif spec.relation == "less":
        if ok and e is not None and e <= -me:
            part.verdict, why = HOLDS, f"a below b by {eff}, {test_txt}"
        elif no and kind_not == "opposite" and e is not None and e >= me:
            part.verdict, why = FAILS, f"the opposite: a above b by {eff}, {not_txt}"
        elif no and kind_not == "equivalence":
            part.verdict = FAILS
            why = f"no difference beyond +-{spec.margin:g}{unit} (equivalence test {not_txt}): a is not cheaper"
        else:
            small = ok and e is not None and abs(e) < me
            part.verdict = INCONCLUSIVE
            why = (f"{eff}, " + (f"significant but below the smallest effect that counts ({me:g}{unit})"
                                 if small else f"not significant ({test_txt})") + f"; would decide: {hint}")
    else:  # equal
        if ok:
            part.verdict, why = HOLDS, f"within +-{spec.margin:g}{unit} ({eff}, equivalence {test_txt})"
        elif no and e is not None and abs(e) >= me:
            part.verdict, why = FAILS, f"differ by {eff}, {not_txt}"
        else:
            part.verdict = INCONCLUSIVE
            why = f"{eff}, neither a difference nor equivalence shown ({test_txt}); would decide: {hint}"
    part.reason = f"{sides}: {why}"
    return part


def _decide_instructions(part: Any, sides: str, eff: str) -> Any:
    spec = part._spec
    _, _, tol = part._exact
    e = part.effect
    label = ("estimated cost (model, emulated)" if getattr(part, "figure_unit", "") == "model"
             else "in guest instructions (emulated)")
    counts = max(spec.min_effect, tol)
    margin = (spec.margin or 0.0) - tol
    if e is None or math.isnan(e):
        part.verdict, why = NOT_MEASURABLE, "side b counts 0 instructions: no relative effect"
    elif spec.relation == "less" and e <= -counts:
        part.verdict, why = HOLDS, f"a below b by {eff} (counts from {counts:g}%)"
    elif spec.relation == "less" and e >= counts:
        part.verdict, why = FAILS, f"the opposite: a above b by {eff} (counts from {counts:g}%)"
    elif spec.relation == "less" and abs(e) < margin:
        part.verdict, why = FAILS, f"{eff}: no difference beyond +-{spec.margin:g}%: a is not cheaper"
    elif spec.relation == "equal" and abs(e) < margin:
        part.verdict, why = HOLDS, f"within +-{spec.margin:g}% ({eff}, trials within {tol:g}%)"
    elif spec.relation == "equal" and abs(e) >= counts:
        part.verdict, why = FAILS, f"differ by {eff} (counts from {counts:g}%)"
    else:
        part.verdict = INCONCLUSIVE
        why = (f"{eff}: inside the smallest effect that counts ({counts:g}%: min_effect {spec.min_effect:g}%, "
               f"tolerances {tol:g}%) and not inside the margin less the tolerances")
    part.reason = f"{label}: {sides}: {why}"
    return part
