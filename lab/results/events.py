"""The event-count plugin's windows (the lab's events.log, written by bpf/qemu/eventcount.c) turned
into a kernel_batch row's figures: per in-kernel trigger over the counting baseline, exactly like
the row's instructions (hooked block minus counting block, over the block's triggers), per trial,
then the median; and `est_cycles` by the stated model (lab/results/costmodel.py), in its own unit.

A row that asks (`event_windows`: the helper run's id, its trials' block orders, the triggers per
block) gets `ev_<class>` medians, `ev_samples` per class, `est_cycles` (+ `est_samples`,
`est_unit` "model", `est_model` version), or `events_note` saying why not.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from lab.results.costmodel import model

BLOCKS = {"A": 0, "B": 1, "C": 2}
EST_UNIT = "model"
TOLERANCE = 0.005  # as kernel_batch's instruction gate (lab/agent/hooks/gates.py)


def parse(text: str) -> tuple[list[str], dict[str, list[tuple[int, list[int]]]]]:
    """(counter names, {window id: [(block, counts), ...] in the order written})."""
    names: list[str] = []
    windows: dict[str, list[tuple[int, list[int]]]] = {}
    for ln in text.splitlines():
        parts = ln.split()
        if parts[:2] == ["#", "eventcount"] and "counters" in parts:
            names = parts[parts.index("counters") + 1:]
        elif len(parts) >= 3 and parts[0] == "W":
            windows.setdefault(parts[1].lower().lstrip("0") or "0", []).append(
                (int(parts[2]), [int(x) for x in parts[3:]]))
    return names, windows


def per_trial(names: list[str], wins: list[tuple[int, list[int]]], orders: list[str], ops: int,
              ) -> list[dict[str, float]] | str:
    """Per trial {class: (hooked - baseline) / ops}; the baseline is the counting block where the
    trial has one, else the bare block. A string says why the windows do not match the trials."""
    want = sum(len(o) for o in orders)
    if len(wins) != want:
        return f"{len(wins)} plugin windows for {want} measured blocks"
    out, i = [], 0
    for order in orders:
        got = {b: c for b, c in wins[i:i + len(order)]}
        i += len(order)
        if sorted(got) != sorted(BLOCKS[x] for x in order):
            return f"windows of blocks {sorted(got)} for a trial ordered {order}"
        if 1 not in got:
            return "no hooked block"
        base = got.get(2, got.get(0))
        out.append({n: (h - b) / float(ops) for n, h, b in zip(names, got[1], base, strict=False)})
    return out


def fields(row: dict[str, Any], log_text: str) -> dict[str, Any]:
    """The event figures for `row` from the plugin's log, or {"events_note": why not}."""
    req = row.get("event_windows") or {}
    names, windows = parse(log_text)
    mid = str(req.get("mark_id", "")).lower().lstrip("0") or "0"
    wins = windows.get(mid)
    if not names or not wins:
        return {"events_note": "no plugin windows for this row (the guest did not run under the event-count plugin)"}
    trials = per_trial(names, wins, list(req.get("orders") or []), int(req.get("ops") or 0) or 1)
    if isinstance(trials, str):
        return {"events_note": f"plugin windows do not match the trials: {trials}"}
    m = model()
    out: dict[str, Any] = {f"ev_{n}": statistics.median(t[n] for t in trials) for n in names}
    out["ev_samples"] = {n: [round(t[n], 4) for t in trials] for n in names}
    est = [m.estimate(t) for t in trials]
    med = statistics.median(est)
    out.update(est_cycles=med, est_samples=[round(e, 3) for e in est], est_unit=EST_UNIT, est_model=m.version,
               est_parts={k: round(v, 3) for k, v in m.parts({n: out[f"ev_{n}"] for n in names}).items()})
    spread = (max(est) - min(est)) / abs(med) if med else 0.0
    out["est_spread"] = round(spread, 5)
    if spread > TOLERANCE and len(est) > 1:
        out["events_note"] = (f"the estimate varies {spread * 100:.2f}% across trials (over the "
                              f"{TOLERANCE * 100:.1f}% determinism tolerance): not exact")
    return out


def enrich(row: dict[str, Any], log: Path | None) -> dict[str, Any]:
    """`row` with its event figures where it asks for them and a log exists (else unchanged)."""
    if not row.get("event_windows") or log is None:
        return row
    try:
        text = log.read_text()
    except OSError as e:
        return dict(row, events_note=f"cannot read the plugin's windows ({e})")
    return dict(row, **fields(row, text))
