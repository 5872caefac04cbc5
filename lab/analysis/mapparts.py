"""Map access of a tool, on the host: the agent's counted map operations (the row's map_count,
lab/agent/tools/mapaccess.py) x each operation's per-op cost from the map suite rows of the same run.

Per-op cost of (map type, operation) = the map suite's in-kernel row (driver `kernel`, one thread:
contention `1cpu`, status ok) of that map type and operation: `map_ns` (the loop with the map call
minus the same loop without it), dense keys before sparse before any other key space, flags 0
before others. Operations the map suite does not time (delete, perf/ring-buffer output) and map
types it does not run are named with their calls/s, never costed by a guess. Map access =
sum over costed ops of calls/s x ns/op, in CPU ms per second of load like the other parts; it is
carved out of execution (the programs' run_time_ns includes their map calls), and a figure above
execution is flagged implausible rather than carved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lab.results import stats
from lab.results.selectors import select

KEY_SPACES = ("dense", "sparse")
TIMED_OPS = ("update", "lookup")


@dataclass(frozen=True)
class OpCost:
    ns: float
    source: str  # which map row, in words


@dataclass
class MapAccess:
    status: str  # measured | partial | implausible | not measured | not separable
    ms: float | None = None  # CPU ms per second of load
    sources: list[str] = field(default_factory=list)
    why: str = ""
    counted: str = ""  # calls/s per op, as counted

    def text(self) -> str:
        return "; ".join(x for x in [*self.sources, self.why] if x)


def _rank(r: pd.Series) -> tuple[int, int]:
    ks = str(r.get("key_space"))
    return (KEY_SPACES.index(ks) if ks in KEY_SPACES else len(KEY_SPACES), 0 if not stats.finite(r.get("flags")) else 1)


def op_costs(maps: pd.DataFrame) -> dict[tuple[str, str], OpCost | str]:
    """(map type, operation) -> its in-kernel per-op cost from one run's map rows, or why there is none."""
    out: dict[tuple[str, str], OpCost | str] = {}
    if maps.empty or "driver" not in maps:
        return out
    rows = select(maps, {"driver": "kernel", "contention": "1cpu"})
    for (mtype, op), grp in rows.groupby(["map_type", "operation"]):
        ok = [r for _, r in grp.iterrows() if r.get("status") == "ok"]
        for r in sorted(ok, key=_rank):
            ns = stats.finite(r.get("map_ns"))
            if ns is None:
                ns0, loop = stats.finite(r.get("ns_median")), stats.finite(r.get("loop_ns"))
                ns = None if ns0 is None or loop is None else ns0 - loop
            if ns is None or ns < 0:
                continue
            at = f" {r['_file']}:{int(r['_line'])}" if isinstance(r.get("_file"), str) else ""
            flags = int(stats.finite(r.get("flags")) or 0)
            out[(str(mtype), str(op))] = OpCost(ns, f"maps {mtype} {op} kernel 1cpu {r.get('key_space')} "
                                                    f"flags {flags}{at}: {ns:.1f} ns/op")
            break
        else:
            st = grp["status"].iloc[0]
            out[(str(mtype), str(op))] = f"the map suite's {mtype} {op} rows have no usable figure ({st})"
    return out


def map_access(row: pd.Series | dict[str, Any], costs: dict[tuple[str, str], OpCost | str] | None,
               exec_ms: float | None) -> MapAccess:
    """The map access part of one tools row (costs None: the map suite did not run in this run)."""
    mc = row.get("map_count")
    ns = row.get("not_separable") if isinstance(row.get("not_separable"), dict) else {}
    if not isinstance(mc, dict):
        return MapAccess("not separable", why=str(ns.get("map_access") or "not separable: not counted"))
    ops = mc.get("ops") or {}
    counted = ", ".join(f"{k} {float(v):,.0f}/s" for k, v in sorted(ops.items())) or "no map operation counted"
    uncounted = "not counted: " + "; ".join(mc.get("not_counted") or []) if mc.get("not_counted") else ""
    missed = bool(stats.finite(mc.get("missed_per_s")))  # calls the kernel did not hand to the counter: a lower bound
    if not ops:
        return MapAccess("partial" if missed else "measured", 0.0, why="; ".join(x for x in (
            f"counted ({mc.get('mode')}): no map operation on the tool's maps", uncounted) if x), counted=counted)
    if costs is None:
        return MapAccess("not measured", why=f"not measured: the map suite did not run in this run (counted: "
                         f"{counted})", counted=counted)
    total_ns, sources, missing = 0.0, [], []
    for key, calls in sorted(ops.items()):
        mtype, _, op = key.rpartition(" ")
        cost = costs.get((mtype, op))
        if isinstance(cost, OpCost):
            total_ns += float(calls) * cost.ns
            sources.append(f"{key} {float(calls):,.0f}/s x {cost.source}")
        elif op not in TIMED_OPS:
            missing.append(f"{key} {float(calls):,.0f}/s (the map suite does not time {op})")
        else:
            missing.append(f"{key} {float(calls):,.0f}/s ({cost or f'no map suite row for {mtype} {op}'})")
    if not sources:
        return MapAccess("not measured", why="not measured: " + "; ".join(missing), counted=counted)
    ms = total_ns / 1e6
    status = "partial" if missing or missed else "measured"
    why = ("partial, not costed: " + "; ".join(missing)) if missing else ""
    if exec_ms is not None and ms > exec_ms:
        status, why = "implausible", (f"implausible: {ms:.3f} ms/s of map access is more than execution "
                                      f"({exec_ms:.3f} ms/s); not carved out" + (f"; {why}" if why else ""))
    return MapAccess(status, ms, sources, "; ".join(x for x in (why, uncounted) if x), counted)
