"""The talk's claims as data (lab/data/talk.yaml) and the one function that turns rows into verdicts.
Pure: a pandas frame of rows (lab/results/aggregate.py rows_frame, which has gated every row:
lab/results/readgates.py), the claim specs and what the runs asked for (lab/analysis/expected.py) in,
verdicts out; no files, no plots.

A claim has parts; a part names the rows of each side by selectors (see talk.yaml), a relation, a
test and the smallest effect that counts. Its `per` and `series` combinations come from what the
runs asked for (the playbook's tools, frequencies, key counts), not only from the rows that exist:
a combination that is missing or failed (error rows included) is a part that is not measurable.
Per target group (kernel release, accelerator, CPU model, vCPU count) a part is:

- `holds`: measured, and decided in the expected direction by at least the smallest effect;
- `does not hold`: decided in the opposite direction, or (a "cheaper" part with a margin) shown
  within the margin;
- `inconclusive`: measured, decided neither way (the reason says what would decide it, such as
  "needs >= 6 trials per side" when the sample sizes cannot reach significance at all);
- `not measurable here`: rows missing, not ok (their status and reason, gated rows included), timing
  rows emulated under plain TCG, or sides in different units (guest instructions vs time).

Time parts are decided by one p-value each, corrected within the claim (lab/analysis/verdicts.py says how);
parts in guest instructions (accelerator icount) are decided value against value, like exact
bytes, and say so. A claim holds only when every deciding part holds; otherwise the first of does
not hold, not measurable here, inconclusive that a deciding part has. Parts with role `context`
(e.g. the open path beside kernel_batch) are measured, decided and shown, labelled, but do not
decide the claim.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from lab.agent.hooks.gates import ICOUNT_TOLERANCE
from lab.analysis import expected, quantities, verdicts
from lab.analysis.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURABLE, ORDER, TCG_NOTE
from lab.core import units
from lab.results import stats
from lab.results.selectors import Concrete, expand, row_id, select

__all__ = ["FAILS", "HOLDS", "INCONCLUSIVE", "NOT_MEASURABLE", "ORDER", "TCG_NOTE", "select"]
INSN_LABEL = "in guest instructions (emulated)"


@dataclass(frozen=True)
class Metric:
    column: str  # per-trial samples (or, exact, the value) of a row
    unit: str
    points: bool  # effect in points (a % metric) rather than % of side b
    exact: bool = False
    per_second: bool = False  # ns per sample x the row's freq_hz: % of one CPU's time


METRICS = {
    "ns": Metric("samples", "ns/op", False),
    "loss_pct": Metric("loss_samples", "% lost", True),
    "overhead_pct": Metric("overhead_samples", "% lost", True),
    "memlock": Metric("memlock_measured", "B memlock", False, exact=True),
    # the memory the kernel charges for a map (lab/agent/maps/charge.py): the memory cgroup's, per map,
    # from 5.11; the RLIMIT_MEMLOCK charge (= memlock) before
    "charged": Metric("mem_charged", "B charged", False, exact=True),
    # perf_event: the program's own cost (body arm minus the event-only arm of the same trials, ns per
    # sample) times the samples per second: the sampling interrupt is not in it
    "program_cpu_pct": Metric("minus_none_samples", "% of a CPU", False, per_second=True),
}
# the stated cost model's estimate per trial (lab/results/events.py), its own unit: parts of role
# "estimate" decide a claim in emulation, the instruction parts beside them (quantities.with_estimate)
METRICS["est"] = Metric("est_samples", "est. cycles/op", False)
EST_LABEL = quantities.EST_LABEL
RELATIONS = ("less", "equal", "between", "grows_with_vcpus")
ROLES = ("decides", "context", "fallback", "estimate")  # fallback: decides when no deciding part is measurable


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
    expect: dict[str, Any] = field(default_factory=dict)  # per/series field -> "suite.param" or a list
    role: str = "decides"
    quantity: str = ""  # what the part measures, in words (the report shows it)
    short: str = ""  # a word or two for it in the claim's one-line reason
    regime: str | None = None  # a row field naming the kernel's accounting regime; its words join the reason
    blind: dict[str, str] = field(default_factory=dict)  # regime -> method that cannot see the difference there

    @property
    def timing(self) -> bool:
        return not METRICS[self.metric].exact

    @classmethod
    def parse(cls, d: dict[str, Any]) -> PartSpec:
        if d.get("metric") not in METRICS or d.get("relation") not in RELATIONS:
            raise ValueError(f"part {d.get('name')!r}: metric one of {list(METRICS)}, relation one of {RELATIONS}")
        if d["relation"] in ("less", "equal") and not d.get("b"):
            raise ValueError(f"part {d['name']!r}: relation {d['relation']} needs side b")
        if d.get("role", "decides") not in ROLES:
            raise ValueError(f"part {d['name']!r}: role one of {ROLES}")
        return cls(name=d["name"], a=dict(d["a"]), b=dict(d["b"]) if d.get("b") else None, metric=d["metric"],
                   relation=d["relation"], test=d["test"], min_effect=float(d.get("min_effect", 0)),
                   margin=float(d["margin"]) if d.get("margin") is not None else None,
                   per=tuple(d.get("per") or ()), series=d.get("series"),
                   bounds=tuple(d["bounds"]) if d.get("bounds") else None,  # type: ignore[arg-type]
                   min_vcpus=int(d.get("min_vcpus", 1)), decide=str(d.get("decide", "")),
                   expect=dict(d.get("expect") or {}), role=str(d.get("role", "decides")),
                   quantity=str(d.get("quantity", "")), short=str(d.get("short", "")), regime=d.get("regime"),
                   blind={str(k): str(v) for k, v in (d.get("blind") or {}).items()})


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
    q: float | None = None  # Holm-adjusted within the claim's family
    n_a: int = 0
    n_b: int = 0
    unit: str = ""  # what n counts: trials, runs or rows
    rows_a: list[str] = field(default_factory=list)
    rows_b: list[str] = field(default_factory=list)
    a: str = ""  # side summaries: median [interval] in the metric's unit
    b: str = ""
    figure_unit: str = ""  # "ns" | "insn" for timing parts measured; "" otherwise
    summary: str = ""  # one plain sentence when the part is not measurable (the claim's reason uses it)
    role: str = "decides"
    quantity: str = ""
    regime: str = ""  # the accounting regime(s) of the rows used, in words
    family: int = 0  # how many p-values the part's claim corrects together (0: decided without one)
    _p: tuple[float | None, str] | None = field(default=None, repr=False)  # the decision test and its kind
    _p_not: tuple[float | None, str] | None = field(default=None, repr=False)  # the "does not hold" test
    _q_not: float | None = field(default=None, repr=False)
    _exact: tuple[float, float, float] | None = field(default=None, repr=False)  # insn: a, b, tolerance %
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
    unit: str = ""  # "insn": decided in guest instructions; "ns": in time; "": neither (bytes)

    def json(self) -> dict[str, Any]:
        return {"claim": self.claim, "title": self.title, "group": self.group, "verdict": self.verdict,
                "reason": self.reason, "unit": self.unit, "parts": [p.json() for p in self.parts]}


def parse_claims(talk: dict[str, Any]) -> list[dict[str, Any]]:
    """The claims of talk.yaml with their parts parsed (ValueError on a malformed part)."""
    return [dict(c, parts=[PartSpec.parse(p) for p in c.get("parts", [])]) for c in talk["claims"]]


# ---------------------------------------------------------------------------------------------
# measuring one part


def _not_ok(rows: pd.DataFrame) -> str:
    bad = rows[rows["status"] != "ok"]
    return "; ".join(sorted({f"{r['status']}: {str(r.get('reason') or '')[:240]}" for _, r in bad.iterrows()}))


def _plain(rows: pd.DataFrame) -> str:
    return "; ".join(dict.fromkeys(expected.in_words(r) for r in rows.to_dict("records") if r.get("status") != "ok"))


def _side(rows: pd.DataFrame, metric: Metric) -> tuple[dict[str, list[float]], list[str]]:
    """Per run, the side's values (samples, or exact values), and the ids of the rows used."""
    by_run: dict[str, list[float]] = {}
    ids = []
    for _, r in rows.iterrows():
        v = r.get(metric.column)
        vals = stats.clean(v if isinstance(v, list) else [v])
        if metric.per_second:
            hz = stats.finite(r.get("freq_hz"))
            vals = [x * hz / 1e7 for x in vals] if hz else []
        if vals:
            by_run.setdefault(str(r["run"]), []).extend(vals)
            ids.append(row_id(r))
    return by_run, ids


def _summary(values: list[float], unit: str, exact: bool) -> str:
    if exact:  # several runs (boots): their range too
        spread = f" (range {min(values):,.0f}-{max(values):,.0f} over {len(values)})" if len(set(values)) > 1 else ""
        return f"{stats.median_ci(values).median:,.0f} {unit}{spread}" if values else "-"
    return stats.median_ci(values).text(2 if "%" in unit else 1, f" {unit}")


def _emulated_figures(g: pd.DataFrame, cp: Concrete, metric: Metric) -> str:
    out = []
    for label, sel in (("a", cp.a), ("b", cp.b)):
        if sel is None:
            continue
        by_run, _ = _side(select(g, sel), metric)
        vals = [v for vs in by_run.values() for v in vs]
        if vals:
            out.append(f"{label} {_summary(vals, metric.unit, False)}")
    return f" (emulated figures: {', '.join(out)})" if out else ""


def measure(cp: Concrete, spec: PartSpec, g: pd.DataFrame, everything: pd.DataFrame,
            params: expected.Params | None = None) -> Part:
    """Everything about one concrete part except the decision (lab/analysis/verdicts.py)."""
    metric = METRICS[spec.metric]
    part = Part(cp.name, NOT_MEASURABLE, "", spec.test, effect_unit="points" if metric.points else "% of b",
                role=spec.role, quantity=spec.quantity, _spec=spec)
    if cp.problem:
        part.rows_a = [row_id(r) for _, r in select(g, cp.a).iterrows()]
        part.reason = cp.problem + (f"; would decide: {spec.decide}" if spec.decide else "")
        return part
    vcpus = int(g["vcpus"].max())
    if vcpus < spec.min_vcpus:
        part.reason = (f"{vcpus} vCPU here: needs at least {spec.min_vcpus} for concurrency"
                       + (f"; decided on {spec.decide}" if spec.decide else ""))
        return part
    if spec.relation == "grows_with_vcpus":
        return quantities.grows(part, spec, g, cp, everything, METRICS[spec.metric])
    if spec.timing and bool(g["emulated"].any()):
        part.reason = f"TCG: {TCG_NOTE}{_emulated_figures(g, cp, metric)}"
        return part
    got: dict[str, tuple[dict[str, list[float]], list[str], set[str], set[str]]] = {}
    for label, sel in [("a", cp.a)] + ([("b", cp.b)] if cp.b is not None else []):
        rows = select(g, sel)
        setattr(part, f"rows_{label}", [row_id(r) for _, r in rows.iterrows()])
        if rows.empty:
            failed = select(g[g["status"] != "ok"], sel, missing_matches=True)
            setattr(part, f"rows_{label}", [row_id(r) for _, r in failed.iterrows()])
            part.reason = (f"side {label}: {_not_ok(failed)}" if not failed.empty
                           else f"side {label}: {expected.why_missing(sel, params)}")
            part.summary = _plain(failed) if not failed.empty else expected.why_missing(sel, params)
            return part
        ok = rows[rows["status"] == "ok"]
        if ok.empty:
            part.reason = f"side {label}: {_not_ok(rows)}"
            part.summary = _plain(rows)
            return part
        by_run, ids = _side(ok, metric)
        if not by_run:
            part.reason = f"side {label}: its rows carry no per-trial `{metric.column}`" + (
                " (only icount runs under the event-count plugin do; the claim is decided on its other parts)"
                if spec.metric == "est" else "")
            return part
        figs = {str(u) for u in ok["figure_unit"]} if "figure_unit" in ok else {units.NS}
        got[label] = (by_run, ids, figs, {str(m) for m in ok.get("method", pd.Series(dtype=object)).dropna()})
        setattr(part, f"rows_{label}", ids)
    if spec.timing:
        figs = set().union(*(v[2] for v in got.values()))
        if len(figs) > 1:
            part.reason = ("sides in different units (" + ", ".join(f"{k} in {units.label('/'.join(sorted(v[2])))}"
                                                                    for k, v in got.items())
                           + "): an instruction count and a time are never compared")
            return part
        part.figure_unit = units.MODEL if spec.metric == "est" else figs.pop()
    force = any(len(v[0]) > 1 for v in got.values())
    vals = {k: stats.unit_values(v[0], force_runs=force) for k, v in got.items()}
    ua, ub = vals["a"], vals.get("b")
    part.n_a, part.n_b = len(ua.values), len(ub.values) if ub else 0
    part.unit = "rows" if metric.exact else ua.unit
    shown_unit = "insn/op" if part.figure_unit == units.INSN else metric.unit  # est: est. cycles/op
    part.a = _summary(ua.values, shown_unit, metric.exact)
    part.b = _summary(ub.values, shown_unit, metric.exact) if ub else ""
    ma = stats.median_ci(ua.values).median
    if ub is not None:
        mb = stats.median_ci(ub.values).median
        part.effect = (ma - mb) if metric.points else stats.relative_pct(ma, mb)
        scale = 1.0 if metric.points else abs(mb) / 100
    else:
        mb, part.effect, scale = math.nan, ma, 1.0
    if quantities.blind(part, spec, g, cp):
        return part
    part.verdict = ""  # measured: decided by lab/analysis/verdicts.py
    if metric.exact:
        part.test = "exact"
    elif part.figure_unit in (units.INSN, units.MODEL):
        return _instructions(part, spec, got, ma, mb)
    else:
        part._p, part._p_not = verdicts.p_values(spec, ua.values, ub.values if ub else None, part.effect, scale)
    return part


def _instructions(part: Part, spec: PartSpec, got: dict[str, Any], ma: float, mb: float) -> Part:
    """A part in guest instructions: value against value, within the methods' determinism tolerance."""
    part.test = f"exact, {EST_LABEL if part.figure_unit == units.MODEL else INSN_LABEL}"
    methods = set().union(*(v[3] for v in got.values()))
    untolerated = sorted(m for m in methods if m not in ICOUNT_TOLERANCE)
    untolerated += ["(none)"] if any(not v[3] for v in got.values()) else []
    if spec.metric not in ("ns", "est") or spec.relation not in ("less", "equal") or untolerated:
        what = f"method {', '.join(untolerated)}" if untolerated else f"metric {spec.metric}"
        part.verdict = NOT_MEASURABLE
        part.reason = (f"{INSN_LABEL}: {what} has no determinism tolerance (lab/agent/hooks/gates.py "
                       "ICOUNT_TOLERANCE), so its counts cannot be compared value against value")
        return part
    tol = 100 * sum(max(ICOUNT_TOLERANCE[m] for m in v[3]) for v in got.values())
    part._exact = (ma, mb, tol)
    return part


# ---------------------------------------------------------------------------------------------
# every claim


def evaluate(df: pd.DataFrame, claims_spec: list[dict[str, Any]], alpha: float = stats.ALPHA,
             asked: dict[str, expected.Params] | None = None) -> list[ClaimVerdict]:
    """Every claim's verdict per target group. Pure: rows (lab/results/aggregate.py rows_frame), parsed claims and,
    per group, what its runs asked for (expected.asked; None: parts come from the rows alone)."""
    out: list[ClaimVerdict] = []
    if df.empty:
        return out
    df = df[[c for c in df.columns if c in _needed(claims_spec)]]  # narrow, plain-object frames select fast
    df = df.astype({c: object for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)})
    for group, g in df.groupby("group", sort=True):
        params = (asked or {}).get(str(group))
        for c in claims_spec:
            parts = [measure(cp, spec, g, df, params) for spec in c["parts"]
                     for cp in expand(spec, g, expected.values(spec.expect, params))]
            for p in parts:  # the same rows in any order name the same ids
                p.rows_a.sort()
                p.rows_b.sort()
            verdicts.decide_claim(parts, alpha)
            for p in parts:  # the accounting regime named in the part's reason
                if p.regime and p.regime not in p.reason:
                    p.reason += f" [{p.regime}]"
            out.append(_claim_verdict(c, str(group), bool(g["emulated"].any()), parts))
    return out


def _needed(claims_spec: list[dict[str, Any]]) -> set[str]:
    cols = {"run", "_file", "_line", "status", "reason", "emulated", "vcpus", "kernel", "group", "figure_unit",
            "method", "gated", "suite", "hook", "tool", "map_type", "freq_hz"}  # the last: for reasons in words
    for c in claims_spec:
        for p in c["parts"]:
            cols |= set(p.a) | set(p.b or {}) | set(p.per) | {p.series or "", METRICS[p.metric].column, p.regime or ""}
    return cols


def _claim_verdict(c: dict[str, Any], group: str, emulated: bool, parts: list[Part]) -> ClaimVerdict:
    figs = {p.figure_unit for p in parts if p.figure_unit}
    unit = units.INSN if units.INSN in figs else (units.NS if figs else "")
    deciding = quantities.deciding(parts)
    if not deciding:
        return ClaimVerdict(c["id"], c["title"], group, NOT_MEASURABLE, "the claim lists no parts", emulated,
                            parts, unit)
    verdict = next(v for v in ORDER if any(p.verdict == v for p in deciding))
    if verdict == HOLDS:
        reason = f"all {len(deciding)} deciding part(s) measured and passed"
    else:
        which = [p for p in deciding if p.verdict == verdict]
        reason = "; ".join(f"{p.name}: {p.summary or p.reason}" for p in which)
        if emulated and all(p.reason.startswith("TCG") for p in which):
            reason = f"TCG: {TCG_NOTE}"
    context = [p for p in parts if p.role != "decides" and p not in deciding and p.verdict != verdict]
    if context and not c.get("brief"):
        reason += " (context, not deciding: " + "; ".join(f"{p.name}: {p.verdict}" for p in context) + ")"
    if unit == units.INSN:
        verdict, reason, unit = quantities.with_estimate(parts, verdict, reason)
    if c.get("brief"):  # every part's quantity on one line first (the grid's cell shows up to the first "; ")
        reason = quantities.briefs(parts) + "; " + reason
    return ClaimVerdict(c["id"], c["title"], group, verdict, reason, emulated, parts, unit)
