"""Plausibility gates on read: every stored row goes through here before any reader sees it
(aggregate.rows_frame is the one door: tables, plots, compare, claims and export all read its frame),
so runs recorded by earlier versions are gated exactly like new ones.

The checks are the agent's own (lab/agent/hooks/gates.py, stdlib-only, imported rather than copied):
  - Gates.problems: negative beyond the interval, body below empty with disjoint intervals, another
    process's programs or BPF stats during the trials, and the determinism of instruction counts
    (trials differing by more than ICOUNT_TOLERANCE of the method); drift is not re-checked: it
    needs the run's calibration blocks, which are not stored (the agent checked it during the run);
  - row_problems: any negative added cost per event, an interval wider than the median, added cost
    below the program's own run time (bpf_stats of the same hook, variant and trigger in the same
    run, net of the stats' own clock reads: `program_times`), a monotone trend across trials, and
    tick-based methods under instruction counting.

A gated row keeps every figure; its status becomes `inconclusive`, its reason gets "gated on read:"
and the reasons appended, and `gated` lists them. Rows that are not `ok` are left as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from lab.agent.hooks import gates as hookgates
from lab.core import units

Row = dict[str, Any]
# rows the agent's Gates.problems compares with each other (one hook's variants and methods)
TOGETHER = ("hook", "attach_point", "freq_hz", "perf_event", "uprobe_target")
# a timed row and the bpf_stats row of the same program and trigger
SAME_PROGRAM = ("hook", "attach_point", "variant", "per", "trigger", "freq_hz", "perf_event", "uprobe_target")


def _key(r: Row, fields: tuple[str, ...]) -> tuple:
    return tuple(r.get(f) for f in fields)


def program_times(rows: Iterable[Row]) -> dict[tuple, float]:
    """The program's own run time per op, by SAME_PROGRAM: bpf_stats body per run net of the stats'
    own clock reads (the row's body_net_ns, else minus the empty variant's bpf_stats of the same hook
    and trigger), times runs per op. A variant whose net time is unknown (the empty variant itself,
    or no empty variant measured) has none: its raw run time is mostly those clock reads."""
    stats: dict[tuple, Row] = {}
    for r in rows:
        med = r.get("ns_median")
        if (r.get("suite") == "hooks" and r.get("method") == "bpf_stats" and r.get("status") == "ok"
                and isinstance(med, int | float) and math.isfinite(med)):
            stats[_key(r, SAME_PROGRAM)] = r
    out: dict[tuple, float] = {}
    variant_at = SAME_PROGRAM.index("variant")
    for key, r in stats.items():
        if r.get("variant") in ("empty", "none"):
            continue
        net = r.get("body_net_ns")
        empty = stats.get(key[:variant_at] + ("empty",) + key[variant_at + 1:])
        if not isinstance(net, int | float) and empty is not None:
            net = float(r["ns_median"]) - float(empty["ns_median"])
        if isinstance(net, int | float) and math.isfinite(net) and net > 0:
            out[key] = float(net) * float(r.get("runs_per_op") or 1.0)
    return out


def problems(rows: list[Row]) -> dict[int, list[str]]:
    """{index in rows: reasons} for the ok hook rows of one run that cannot be right."""
    out: dict[int, list[str]] = {}
    rows = [dict(r, figure_unit=units.of(r)) for r in rows]  # rows recorded before figure_unit: by accelerator
    by_hook: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        if r.get("suite") == "hooks":
            by_hook.setdefault(_key(r, TOGETHER), []).append(i)
    agent = hookgates.Gates(bound=math.inf)  # no drift: the calibration blocks are not stored
    for idx in by_hook.values():
        for j, reasons in agent.problems([rows[i] for i in idx]).items():
            out.setdefault(idx[j], []).extend(reasons)
    prog = program_times(rows)
    for i, r in enumerate(rows):
        if r.get("suite") != "hooks":  # other suites' rows in guest instructions: determinism only
            det = hookgates.determinism_problem(r) if r.get("status") == "ok" else None
            if det:
                out.setdefault(i, []).append(det)
            continue
        more = hookgates.row_problems(r, prog.get(_key(r, SAME_PROGRAM)), insn=units.of(r) == units.INSN)
        if more:
            out.setdefault(i, []).extend(more)
    return out


def gate_rows(rows: list[Row]) -> list[Row]:
    """Copies of one run's rows, each implausible `ok` row made `inconclusive` with its reasons."""
    out = [dict(r) for r in rows]
    for i, reasons in problems(rows).items():
        r = out[i]
        if r.get("status") != "ok":
            continue
        why = "gated on read: " + "; ".join(reasons)
        r["status"] = "inconclusive"
        r["reason"] = f"{r['reason']}; {why}" if r.get("reason") else why
        r["gated"] = list(reasons)
    return out
