"""`results.history`: every figure's series across the runs of a store, and its change points.

A series is one measurement (its suite's row key, lab/results/aggregate.py KEYS) within one comparable
identity: kernel release, accelerator, QEMU version, CPU models (host and guest), guest size and the
suite's parameters (the run's manifest). Two runs that differ in any of them never share a series.
Each point is one run's median of the row's per-trial samples, with lab/results/stats.py's interval.

Change points come from Apache Otava (`otava.analysis.compute_change_points`: E-Divisive over the
series, split in windows, then a merge step that keeps a point only when Student's t-test of the
segments either side gives p < MAX_PVALUE *and* the relative change exceeds a floor). The floor is:
- a method with a determinism tolerance in guest instructions (lab/agent/hooks/gates.py ICOUNT_TOLERANCE:
  kernel_batch 0.5 %, the map suite's in-kernel rows 2 %): that tolerance (a change beyond it is real);
- any other figure (ns, or instructions of the open path): results.compare's THRESHOLD_PCT (2 %) (tool
  overhead: THRESHOLD_POINTS) and significance: besides Otava's t-test, the runs either side of the
  change (up to the neighbouring ones) must differ by Mann-Whitney at stats.ALPHA, the run being the
  unit, as in results.compare (Otava's t-test takes a one-run segment as certain), with q < ALPHA
  after Benjamini-Hochberg over every noisy series of the history (one family, as compare's table).
Plain TCG rows are left out (their timings are never figures). Lower is better for every figure here.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lab.analysis import compare as comparing
from lab.core import units
from lab.core.config import InputError
from lab.results import aggregate, stats
from lab.results.store import LoadedRun, list_runs, load_runs

MAX_PVALUE = 0.001  # Otava's default significance for its merge step
WINDOW = 50  # Otava's sliding window (runs); a series of up to 50 runs is one window
MIN_POINTS = 4  # fewer runs than this: no change point can be told from noise


@dataclass(frozen=True)
class Identity:
    """What makes two runs' figures comparable (a series never spans two identities)."""

    kernel: str
    accelerator: str
    qemu: str
    cpu: str
    guest: str
    params: str  # a short hash of the suite's parameters (the manifest's suites[suite], icount overrides)

    def text(self) -> str:
        return (f"{self.kernel} ({self.accelerator}, {self.cpu}, {self.guest}, QEMU {self.qemu}, "
                f"params {self.params})")


@dataclass
class Point:
    run: str
    time: str
    median: float
    low: float | None
    high: float | None
    n: int


@dataclass
class Change:
    index: int  # the first point after the change
    before: str  # run id of the last point before it
    after: str  # run id of the first point after it
    old: float  # the segments' means either side (Otava's)
    new: float
    change: float  # new - old, in the figure's unit
    change_pct: float
    p_value: float
    direction: str  # regression | improvement (lower is better)
    after_time: str = ""
    q_value: float | None = None  # noisy figures: Mann-Whitney of the runs either side, BH over every series


@dataclass
class Series:
    suite: str
    key: dict[str, Any]
    row_key: str
    identity: Identity
    unit: str
    metric: str
    floor: str  # what a change had to exceed, in words
    points: list[Point] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    note: str = ""


def find_runs(store: Path, depth: int = 3) -> list[Path]:
    """Run directories under `store`, also nested (a nightly's artifacts downloaded with
    `gh run download ID -D STORE/ID` lie at STORE/ID/ARTIFACT/RUN-ID): every directory with a
    manifest.json or rows, up to `depth` levels down. Sorted by name (run ids start with their time)."""
    if not store.is_dir():
        raise InputError(f"no results store at {store}: give --store DIR (a directory of runs)")
    found: list[Path] = []

    def walk(d: Path, level: int) -> None:
        runs = list_runs(d)
        found.extend(runs)
        if level < depth:
            for sub in sorted(p for p in d.iterdir() if p.is_dir() and p not in runs):
                walk(sub, level + 1)

    walk(store, 0)
    seen: dict[str, Path] = {}
    for p in found:
        seen.setdefault(p.name, p)  # one run downloaded twice (two nights' artifacts) counts once
    return sorted(seen.values(), key=lambda p: p.name)


def _params(manifest: dict[str, Any], suite: str) -> str:
    suites = manifest.get("suites") if isinstance(manifest.get("suites"), dict) else {}
    doc = {"suite": suites.get(suite), "icount": manifest.get("icount_overrides"),
           "cmdline": manifest.get("guest_cmdline")}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:8]


def identity(run: LoadedRun, row: Any) -> Identity:
    m = run.manifest
    guest = m.get("guest") if isinstance(m.get("guest"), dict) else {}
    gtext = f"{guest.get('vcpus', row.get('vcpus'))} vCPU {guest.get('memory', '')}".strip()
    cpu = f"host {m.get('host_cpu_model') or '?'} / {row.get('cpu_model') or '?'}"
    return Identity(kernel=str(row["kernel"]), accelerator=str(row["accelerator"]),
                    qemu=str(m.get("qemu_version") or "not recorded"), cpu=cpu, guest=gtext,
                    params=_params(m, str(row["suite"])))


def row_name(suite: str, key: dict[str, Any]) -> str:
    """A series' short row key: hooks/HOOK/VARIANT/METHOD, maps/MAP_TYPE/FLAGS/KEY_SPACE/OPERATION/...,
    tools/TOOL/LOAD/METHOD (the suite's KEYS without the attach point, empty ones left out)."""
    skip = {"attach_point"}
    vals = [comparing.label({k: v}) for k, v in key.items() if k not in skip and v not in ("", None)]
    return f"{suite}/" + "/".join(v.replace(" ", "_") for v in vals if v)


def _floor(suite: str, rows: pd.DataFrame, unit: str, metric: comparing.Measure) -> tuple[float, float, str]:
    """(Otava's min_magnitude, the points floor (tools), words)."""
    tol = comparing.tolerance(rows, unit) if not metric.exact else None
    if tol is not None:
        return tol, 0.0, f"beyond the determinism tolerance {100 * tol:g}% and p < {MAX_PVALUE:g}"
    if metric.exact:
        return 0.0, 0.0, "any change (bytes do not vary by chance)"
    if metric.points:
        return 0.0, comparing.THRESHOLD_POINTS, f"at least {comparing.THRESHOLD_POINTS:g} point and p < {MAX_PVALUE:g}"
    return comparing.THRESHOLD_PCT / 100, 0.0, f"at least {comparing.THRESHOLD_PCT:g}% and p < {MAX_PVALUE:g}"


def build(run_dirs: list[Path]) -> tuple[list[Series], list[str]]:
    """Every series of these runs (change points found), and notes on what was left out."""
    runs = load_runs(run_dirs)
    by_id = {r.run_id: r for r in runs}
    df = aggregate.rows_frame(runs)
    notes: list[str] = []
    if df.empty:
        return [], ["no valid rows in the store"]
    tcg = df["accelerator"] == "tcg"
    if tcg.any():
        notes.append(f"{int(tcg.sum())} rows of plain TCG runs left out: their timings are never figures")
    df = df[~tcg & (df["status"] == "ok")]
    order = {r.run_id: (str(r.fact("time") or ""), r.run_id) for r in runs}
    out: list[Series] = []
    for suite in sorted(set(df["suite"])):
        sdf = df[df["suite"] == suite]
        keys = [k for k in aggregate.KEYS.get(suite, ()) if k in sdf.columns]
        cache: dict[tuple, Identity] = {}
        cols = ["run", "kernel", "accelerator", "cpu_model", "vcpus", "suite"]
        idents = []
        for vals in sdf[cols].itertuples(index=False, name=None):
            if vals not in cache:
                cache[vals] = identity(by_id[vals[0]], dict(zip(cols, vals, strict=True)))
            idents.append(cache[vals])
        sdf = sdf.assign(_ident=idents, _unit=list(sdf["figure_unit"]))
        for (ident, unit), g in sdf.groupby(["_ident", "_unit"], sort=False):
            for key, rows in comparing.by_key(g, keys).items():
                out.append(_series(suite, dict(zip(keys, key, strict=True)), ident, str(unit), rows, order))
    _disambiguate(out)
    _family(out)
    return out, notes


def _family(series: list[Series]) -> None:
    """One family for every series of a noisy figure (as results.compare's table): the change points'
    Mann-Whitney p-values are Benjamini-Hochberg adjusted over all of them (a series without a
    candidate counts with p = 1), and a change point stays when q < stats.ALPHA."""
    noisy = [s for s in series if not s.floor.startswith(("beyond the determinism", "any change"))]
    ps: list[float | None] = [c.q_value for s in noisy for c in s.changes]
    ps += [1.0] * sum(1 for s in noisy if not s.changes)
    qs = iter(stats.bh(ps))
    for s in noisy:
        for c in s.changes:
            c.q_value = next(qs)
        s.changes = [c for c in s.changes if c.q_value is not None and c.q_value < stats.ALPHA]


def _series(suite: str, key: dict[str, Any], ident: Identity, unit: str, rows: pd.DataFrame,
            order: dict[str, tuple[str, str]]) -> Series:
    m = comparing.measure_of(suite, rows, unit)
    magnitude, points_floor, words = _floor(suite, rows, unit, m)
    s = Series(suite=suite, key=key, row_key=row_name(suite, key), identity=ident, unit=unit,
               metric=m.metric if not m.exact else "memlock B", floor=words)
    per: dict[str, list[float]] = {}
    for run, v in zip(rows["run"], rows[m.column] if m.column in rows else [None] * len(rows), strict=True):
        vals = stats.clean(v if isinstance(v, list) else [v])
        if vals:
            per.setdefault(str(run), []).extend(vals)
    for run in sorted(per, key=lambda r: order.get(r, ("", r))):
        iv = stats.median_ci(per[run])
        if math.isfinite(iv.median):
            s.points.append(Point(run, order.get(run, ("", run))[0], iv.median, iv.low, iv.high, iv.n))
    s.changes = change_points(s, magnitude, points_floor)
    return s


def _disambiguate(series: list[Series]) -> None:
    """Two series of one identity with one short row key (bpf_stats on two attach points): add the point."""
    seen: dict[tuple[Identity, str, str], list[Series]] = {}
    for s in series:
        seen.setdefault((s.identity, s.unit, s.row_key), []).append(s)
    for group in seen.values():
        if len(group) > 1:
            for s in group:
                if s.key.get("attach_point"):
                    s.row_key += f"@{str(s.key['attach_point']).split(' (')[0].replace(' ', '_')}"


def change_points(s: Series, magnitude: float, points_floor: float = 0.0) -> list[Change]:
    """Otava's change points of a series' run medians, kept when beyond the floor."""
    values = [p.median for p in s.points]
    if len(values) < MIN_POINTS:
        s.note = f"{len(values)} runs: too few for change points (at least {MIN_POINTS})"
        return []
    if len(set(values)) == 1:
        return []
    try:
        from otava.analysis import compute_change_points  # Apache Otava (see docs/history-and-bisect.md)
    except ImportError:
        from lab.core.config import LabError

        raise LabError("results.history needs Apache Otava, installed without its pinned dependencies: "
                       "pip install --no-deps apache-otava==0.8.0 (./labctl does it)") from None

    found, _ = compute_change_points(values, window_len=WINDOW, max_pvalue=MAX_PVALUE, min_magnitude=magnitude)
    found = list(found)
    noisy = not s.floor.startswith(("beyond the determinism", "any change"))
    mw = _significant(values, found) if noisy else {int(c.index): None for c in found}
    out = []
    for cp in found:
        if int(cp.index) not in mw:
            continue
        i = int(cp.index)
        old, new = float(cp.stats.mean_1), float(cp.stats.mean_2)
        if points_floor and abs(new - old) < points_floor:
            continue
        pct = stats.relative_pct(new, old)
        out.append(Change(index=i, before=s.points[i - 1].run, after=s.points[i].run, old=old, new=new,
                          change=new - old, change_pct=pct, p_value=float(cp.stats.pvalue),
                          direction="regression" if new > old else "improvement", after_time=s.points[i].time,
                          q_value=mw[i]))  # the raw Mann-Whitney p until _family adjusts it
    return out


def _significant(values: list[float], found: list[Any]) -> dict[int, float | None]:
    """The change points whose runs either side (up to the neighbouring change points) differ by
    Mann-Whitney at stats.ALPHA, the run being the unit: Otava's t-test takes a one-run segment (std 0)
    as certain, so a single outlying run of a noisy figure would otherwise make two change points.
    The weakest is dropped first and the rest tested again on the merged segments."""
    kept = sorted(found, key=lambda c: int(c.index))
    while kept:
        bounds = [0] + [int(c.index) for c in kept] + [len(values)]
        ps = [stats.p_difference(values[bounds[j]:bounds[j + 1]], values[bounds[j + 1]:bounds[j + 2]])
              for j in range(len(kept))]
        worst = max(range(len(kept)), key=lambda j: 1.0 if ps[j] is None else ps[j])
        if ps[worst] is not None and ps[worst] < stats.ALPHA:
            return {int(c.index): p for c, p in zip(kept, ps, strict=True)}
        del kept[worst]
    return {}


def changes(series: list[Series]) -> list[tuple[Series, Change]]:
    """Every change point, the newest first (by the time of the run after it), then the largest."""
    pairs = [(s, c) for s in series for c in s.changes]
    return sorted(pairs, key=lambda sc: (sc[1].after_time, sc[1].after, abs(sc[1].change_pct)), reverse=True)


def as_records(series: list[Series]) -> list[dict[str, Any]]:
    """The change points as `--json` prints them: one dict each, the newest first."""
    out = []
    for s, c in changes(series):
        rec = {"row_key": s.row_key, "suite": s.suite, "row": {k: comparing._norm(v) for k, v in s.key.items()},
               "identity": asdict(s.identity), "unit": units.short(s.unit), "metric": s.metric,
               "before": c.before, "after": c.after, "old": c.old, "new": c.new, "change": c.change,
               "change_pct": c.change_pct, "p_value": c.p_value, "direction": c.direction, "floor": s.floor,
               "runs": len(s.points), "index": c.index}
        out.append(rec)
    return out


CSV_COLUMNS = ("row_key", "suite", "kernel", "accelerator", "qemu", "cpu", "params", "unit", "metric", "before",
               "after", "old", "new", "change", "change_pct", "p_value", "direction", "runs")


def as_csv(series: list[Series]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
    w.writeheader()
    for rec in as_records(series):
        w.writerow({**rec, **{k: rec["identity"][k] for k in ("kernel", "accelerator", "qemu", "cpu", "params")}})
    return buf.getvalue()


def _num(v: float) -> str:
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.3g}"


def format_text(series: list[Series], notes: list[str]) -> str:
    """The history as text: the change points (the newest first), then a line per identity."""
    lines = []
    pairs = changes(series)
    n_id = len({s.identity for s in series})
    lines.append(f"{len(series)} series in {n_id} comparable identit{'y' if n_id == 1 else 'ies'}; "
                 f"{len(pairs)} change point{'s' if len(pairs) != 1 else ''} (Apache Otava E-Divisive, "
                 f"p < {MAX_PVALUE:g}, floors per row below)")
    for s, c in pairs:
        lines.append(f"  {c.direction:11s} {c.change_pct:+.2f}% {s.row_key} ({units.short(s.unit)}/op): "
                     f"{_num(c.old)} -> {_num(c.new)} ({c.change:+,.1f} {units.short(s.unit)}) between "
                     f"{c.before} and {c.after} [{s.identity.kernel}, {s.identity.accelerator}; {s.floor}; "
                     f"p={c.p_value:.2g}]")
    for ident in dict.fromkeys(s.identity for s in series):
        mine = [s for s in series if s.identity == ident]
        runs = max(len(s.points) for s in mine)
        lines.append(f"identity {ident.text()}: {len(mine)} series over {runs} runs")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
