"""The talk's claims as data (lab/data/talk.yaml) and the one decision function that turns rows into
verdicts. Pure: a pandas frame of rows (aggregate.rows_frame) and the claim specs in, verdicts out;
no files, no plots. The report renders what `evaluate` returns and writes it as claims.json.

A claim has parts; a part names the rows of each side by selectors (see talk.yaml), a relation, a
test and the smallest effect that counts. Per target group (kernel release, accelerator, CPU model,
vCPU count) a part is:

- `holds`: measured, and its test passed in the expected direction by at least the smallest effect;
- `does not hold`: significant in the opposite direction by at least that effect, or (for a
  "cheaper" part with a margin) an equivalence test showing no difference beyond the margin;
- `inconclusive`: measured, significant neither way (the reason says what would decide it);
- `not measurable here`: rows missing, not ok (their status and reason), or timing rows emulated
  under TCG (memory parts are decided from TCG rows: bytes are not distorted by emulation).

A claim holds only when every part holds; otherwise the first of does not hold, not measurable
here, inconclusive that any part has. p-values of one group form one family: Benjamini-Hochberg
q-values decide (`stats.bh`), the policy `results.compare` uses too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from . import stats
from .selectors import Concrete, expand, row_id, select

HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURABLE = "holds", "does not hold", "inconclusive", "not measurable here"
ORDER = (FAILS, NOT_MEASURABLE, INCONCLUSIVE, HOLDS)  # a claim takes the first verdict any part has
TCG_NOTE = "pipeline checked, timing not representative"


@dataclass(frozen=True)
class Metric:
    column: str  # per-trial samples (or, exact, the value) of a row
    unit: str
    points: bool  # effect in points (a % metric) rather than % of side b
    exact: bool = False


METRICS = {
    "ns": Metric("samples", "ns/op", False),
    "loss_pct": Metric("loss_samples", "% lost", True),
    "overhead_pct": Metric("overhead_samples", "% lost", True),
    "memlock": Metric("memlock_measured", "B", False, exact=True),
}
RELATIONS = ("less", "equal", "between", "grows_with_vcpus")


@dataclass(frozen=True)
class PartSpec:
    name: str
    a: dict[str, Any]
    metric: str
    relation: str
    test: str
    min_effect: float
    b: dict[str, Any] | None = None
    margin: float | None = None
    per: tuple[str, ...] = ()
    series: str | None = None
    bounds: tuple[float, float] | None = None
    min_vcpus: int = 1
    decide: str = ""

    @property
    def timing(self) -> bool:
        return not METRICS[self.metric].exact

    @classmethod
    def parse(cls, d: dict[str, Any]) -> PartSpec:
        if d.get("metric") not in METRICS or d.get("relation") not in RELATIONS:
            raise ValueError(f"part {d.get('name')!r}: metric one of {list(METRICS)}, relation one of {RELATIONS}")
        if d["relation"] in ("less", "equal") and not d.get("b"):
            raise ValueError(f"part {d['name']!r}: relation {d['relation']} needs side b")
        return cls(name=d["name"], a=dict(d["a"]), b=dict(d["b"]) if d.get("b") else None, metric=d["metric"],
                   relation=d["relation"], test=d["test"], min_effect=float(d.get("min_effect", 0)),
                   margin=float(d["margin"]) if d.get("margin") is not None else None,
                   per=tuple(d.get("per") or ()), series=d.get("series"),
                   bounds=tuple(d["bounds"]) if d.get("bounds") else None,  # type: ignore[arg-type]
                   min_vcpus=int(d.get("min_vcpus", 1)), decide=str(d.get("decide", "")))


@dataclass
class Part:
    """One evaluated part, as claims.json lists it (plus what the report shows of each side)."""

    name: str
    verdict: str
    reason: str
    test: str
    effect: float | None = None  # % of side b, or points for % metrics
    effect_unit: str = ""
    p: float | None = None
    q: float | None = None
    n_a: int = 0
    n_b: int = 0
    unit: str = ""  # what n counts: trials, runs or rows
    rows_a: list[str] = field(default_factory=list)
    rows_b: list[str] = field(default_factory=list)
    a: str = ""  # side summaries: median [interval] in the metric's unit
    b: str = ""
    _p: dict[str, float | None] = field(default_factory=dict, repr=False)
    _q: dict[str, float | None] = field(default_factory=dict, repr=False)
    _spec: PartSpec | None = field(default=None, repr=False)

    def json(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


@dataclass
class ClaimVerdict:
    claim: int
    title: str
    group: str
    verdict: str
    reason: str
    emulated: bool
    parts: list[Part]

    def json(self) -> dict[str, Any]:
        return {"claim": self.claim, "title": self.title, "group": self.group, "verdict": self.verdict,
                "reason": self.reason, "parts": [p.json() for p in self.parts]}


def parse_claims(talk: dict[str, Any]) -> list[dict[str, Any]]:
    """The claims of talk.yaml with their parts parsed (ValueError on a malformed part)."""
    return [dict(c, parts=[PartSpec.parse(p) for p in c.get("parts", [])]) for c in talk["claims"]]


# ---------------------------------------------------------------------------------------------
# measuring one part


def _not_ok(rows: pd.DataFrame) -> str:
    bad = rows[rows["status"] != "ok"]
    return "; ".join(sorted({f"{r['status']}: {str(r.get('reason') or '')[:140]}" for _, r in bad.iterrows()}))


def _side(rows: pd.DataFrame, metric: Metric) -> tuple[dict[str, list[float]], list[str]]:
    """Per run, the side's values (samples, or exact values), and the ids of the rows used."""
    by_run: dict[str, list[float]] = {}
    ids = []
    for _, r in rows.iterrows():
        v = r.get(metric.column)
        vals = stats.clean(v if isinstance(v, list) else [v])
        if vals:
            by_run.setdefault(str(r["run"]), []).extend(vals)
            ids.append(row_id(r))
    return by_run, ids


def _summary(values: list[float], unit: str, exact: bool) -> str:
    if exact:
        return f"{stats.median_ci(values).median:,.0f} {unit}" if values else "-"
    return stats.median_ci(values).text(2 if "%" in unit else 1, f" {unit}")


def measure(cp: Concrete, spec: PartSpec, g: pd.DataFrame, everything: pd.DataFrame) -> Part:
    """Everything about one concrete part except the decision (which needs the group's q-values)."""
    metric = METRICS[spec.metric]
    test = spec.test
    sel_a, sel_b = cp.a, cp.b
    part = Part(cp.name, NOT_MEASURABLE, "", test, effect_unit="points" if metric.points else "% of b",
                _spec=spec)
    if cp.problem:
        part.rows_a = [row_id(r) for _, r in select(g, sel_a).iterrows()]
        part.reason = cp.problem + (f"; would decide: {spec.decide}" if spec.decide else "")
        return part
    vcpus = int(g["vcpus"].max())
    if vcpus < spec.min_vcpus:
        part.reason = f"{vcpus} vCPU here: needs at least {spec.min_vcpus} for concurrency"
        return part
    if spec.relation == "grows_with_vcpus":
        return _grows(part, spec, g, sel_a, everything)
    sides = [("a", sel_a)] + ([("b", sel_b)] if sel_b is not None else [])
    got: dict[str, tuple[dict[str, list[float]], list[str]]] = {}
    for label, sel in sides:
        rows = select(g, sel)
        ok = rows[rows["status"] == "ok"] if not rows.empty else rows
        setattr(part, f"rows_{label}", [row_id(r) for _, r in rows.iterrows()])
        if rows.empty:
            failed = select(g[g["status"] != "ok"], sel, missing_matches=True)
            setattr(part, f"rows_{label}", [row_id(r) for _, r in failed.iterrows()])
            part.reason = (f"side {label}: {_not_ok(failed)}" if not failed.empty
                           else f"side {label}: no rows match {_sel_text(sel)}")
            return part
        if ok.empty:
            part.reason = f"side {label}: {_not_ok(rows)}"
            return part
        by_run, ids = _side(ok, metric)
        if not by_run:
            part.reason = f"side {label}: its rows carry no per-trial `{metric.column}`"
            return part
        got[label] = (by_run, ids)
        setattr(part, f"rows_{label}", ids)
    force = any(len(v[0]) > 1 for v in got.values())
    units = {k: stats.unit_values(v[0], force_runs=force) for k, v in got.items()}
    ua = units["a"]
    ub = units.get("b")
    part.n_a, part.n_b = len(ua.values), len(ub.values) if ub else 0
    part.unit = "rows" if metric.exact else ua.unit
    part.a = _summary(ua.values, metric.unit, metric.exact)
    part.b = _summary(ub.values, metric.unit, metric.exact) if ub else ""
    ma = stats.median_ci(ua.values).median
    if ub is not None:
        mb = stats.median_ci(ub.values).median
        part.effect = (ma - mb) if metric.points else stats.relative_pct(ma, mb)
        scale = 1.0 if metric.points else abs(mb) / 100
    else:
        part.effect, scale = ma, 1.0
    emulated = bool(select(g, sel_a)["emulated"].any() or (sel_b is not None and select(g, sel_b)["emulated"].any()))
    if emulated and spec.timing:
        part.reason = f"TCG: {TCG_NOTE} (emulated figures: a {part.a}, b {part.b})".replace(", b )", ")")
        part.effect = None
        return part
    part.verdict = ""  # measured: decided after the group's q-values
    if metric.exact:
        part.test = "exact"
    elif spec.relation == "between":
        lo, hi = spec.bounds or (0.0, math.inf)
        part._p = {"above_low": stats.p_against(ua.values, lo, "greater", test),
                   "below_high": stats.p_against(ua.values, hi, "less", test),
                   "below_low": stats.p_against(ua.values, lo, "less", test),
                   "above_high": stats.p_against(ua.values, hi, "greater", test)}
    else:
        assert ub is not None
        part._p = {"diff": stats.p_difference(ua.values, ub.values, test)}
        if spec.margin:
            part._p["equiv"] = stats.p_equivalent(ua.values, ub.values, spec.margin * scale, test)
    return part


def _sel_text(sel: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sel.items())


def _grows(part: Part, spec: PartSpec, g: pd.DataFrame, sel: dict[str, Any], everything: pd.DataFrame) -> Part:
    """Exact values of one selector across the targets of this group's kernel with other vCPU counts."""
    kernel = g["kernel"].iloc[0]
    rows = select(everything[everything["kernel"] == kernel], sel)
    ok = rows[rows["status"] == "ok"] if not rows.empty else rows
    part.rows_a = [row_id(r) for _, r in ok.iterrows()]
    part.test, part.unit = "exact", "vCPU counts"
    if ok.empty:
        part.reason = f"no ok rows match {_sel_text(sel)}"
        return part
    by = ok.groupby("vcpus")[METRICS[spec.metric].column].median().sort_index()
    part.n_a = len(by)
    part.a = ", ".join(f"{int(c)} vCPU: {v:,.0f} B" for c, v in by.items())
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


# ---------------------------------------------------------------------------------------------
# deciding


def _fmt_p(p: float | None, q: float | None) -> str:
    if p is None:
        return "no test possible"
    return f"p={p:.2g}, q={q:.2g}" if q is not None else f"p={p:.2g}"


def decide(part: Part, alpha: float = stats.ALPHA) -> Part:
    """The verdict of a measured part from its effect and q-values (see the module docstring)."""
    if part.verdict:
        return part
    spec = part._spec
    assert spec is not None
    e, me = part.effect, spec.min_effect
    unit = "points" if METRICS[spec.metric].points else "%"
    eff = f"{e:+.1f} {unit}" if e is not None and not math.isnan(e) else "-"
    sides = f"a {part.a} vs b {part.b}" if part.b else f"{part.a}"
    hint = f"more trials (now {part.n_a} vs {part.n_b} {part.unit})" if part.b else \
        f"more trials (now {part.n_a} {part.unit})"
    hint += f"; {spec.decide}" if spec.decide else ""

    def sig(key: str) -> bool:
        q = part._q.get(key)
        return q is not None and q < alpha

    if METRICS[spec.metric].exact:
        ok = e is not None and e <= -me
        part.verdict = HOLDS if ok else FAILS
        part.reason = f"{sides} ({eff}; exact bytes, a must be below b by at least {me:g}%)"
        return part
    if spec.relation == "between":
        lo, hi = spec.bounds or (0.0, math.inf)
        key = "above_low" if not sig("above_low") else "below_high"
        part.p, part.q = part._p.get(key), part._q.get(key)
        if sig("above_high") or sig("below_low"):
            part.verdict = FAILS
            where = "above" if sig("above_high") else "below"
            part.reason = f"{sides}: significantly {where} the range ({lo:g}, {hi:g})"
        elif sig("above_low") and sig("below_high"):
            part.verdict = HOLDS
            part.reason = f"{sides}: significantly inside ({lo:g}, {hi:g})"
        else:
            part.verdict = INCONCLUSIVE
            part.reason = f"{sides}: not shown inside ({lo:g}, {hi:g}) ({_fmt_p(part.p, part.q)}); would decide: {hint}"
        return part
    part.p, part.q = part._p.get("diff"), part._q.get("diff")
    test_txt = _fmt_p(part.p, part.q)
    equiv = sig("equiv")
    if spec.relation == "less":
        if sig("diff") and e is not None and e <= -me:
            part.verdict, why = HOLDS, f"a below b by {eff}, {test_txt}"
        elif sig("diff") and e is not None and e >= me:
            part.verdict, why = FAILS, f"the opposite: a above b by {eff}, {test_txt}"
        elif equiv:
            part.p, part.q = part._p.get("equiv"), part._q.get("equiv")
            part.verdict = FAILS
            why = (f"no difference beyond +-{spec.margin:g}{unit} (equivalence test "
                   f"{_fmt_p(part.p, part.q)}): a is not cheaper")
        else:
            small = sig("diff") and e is not None and abs(e) < me
            part.verdict = INCONCLUSIVE
            why = (f"{eff}, " + (f"significant but below the smallest effect that counts ({me:g}{unit})"
                                 if small else f"not significant ({test_txt})") + f"; would decide: {hint}")
    else:  # equal
        if equiv:
            part.p, part.q = part._p.get("equiv"), part._q.get("equiv")
            part.verdict, why = HOLDS, f"within +-{spec.margin:g}{unit} ({eff}, equivalence {_fmt_p(part.p, part.q)})"
        elif sig("diff") and e is not None and abs(e) >= me:
            part.verdict, why = FAILS, f"differ by {eff}, {test_txt}"
        else:
            part.verdict = INCONCLUSIVE
            why = f"{eff}, neither a difference nor equivalence shown ({test_txt}); would decide: {hint}"
    part.reason = f"{sides}: {why}"
    return part


def evaluate(df: pd.DataFrame, claims_spec: list[dict[str, Any]], alpha: float = stats.ALPHA) -> list[ClaimVerdict]:
    """Every claim's verdict per target group. Pure: rows (aggregate.rows_frame) and parsed claims in."""
    out: list[ClaimVerdict] = []
    if df.empty:
        return out
    df = df[[c for c in df.columns if c in _needed(claims_spec)]]  # narrow, plain-object frames select fast
    df = df.astype({c: object for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)})
    for group, g in df.groupby("group", sort=True):
        per_claim: list[tuple[dict[str, Any], list[Part]]] = []
        for c in claims_spec:
            parts = [measure(cp, spec, g, df) for spec in c["parts"] for cp in expand(spec, g)]
            per_claim.append((c, parts))
        family = [(p, k) for _, parts in per_claim for p in parts for k in p._p]
        qs = stats.bh([p._p[k] for p, k in family])
        for (p, k), q in zip(family, qs, strict=True):
            p._q[k] = q
        for c, parts in per_claim:
            for p in parts:
                decide(p, alpha)
            out.append(_claim_verdict(c, str(group), bool(g["emulated"].any()), parts))
    return out


def _needed(claims_spec: list[dict[str, Any]]) -> set[str]:
    cols = {"run", "_file", "_line", "status", "reason", "emulated", "vcpus", "kernel", "group"}
    for c in claims_spec:
        for p in c["parts"]:
            cols |= set(p.a) | set(p.b or {}) | set(p.per) | {p.series or "", METRICS[p.metric].column}
    return cols


def _claim_verdict(c: dict[str, Any], group: str, emulated: bool, parts: list[Part]) -> ClaimVerdict:
    if not parts:
        return ClaimVerdict(c["id"], c["title"], group, NOT_MEASURABLE, "the claim lists no parts", emulated, [])
    verdict = next(v for v in ORDER if any(p.verdict == v for p in parts))
    if verdict == HOLDS:
        reason = f"all {len(parts)} part(s) measured and passed"
    else:
        which = [p for p in parts if p.verdict == verdict]
        reason = "; ".join(f"{p.name}: {p.reason}" for p in which)
        if emulated and all(p.reason.startswith("TCG") for p in which):
            reason = f"TCG: {TCG_NOTE}"
    return ClaimVerdict(c["id"], c["title"], group, verdict, reason, emulated, parts)
