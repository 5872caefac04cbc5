"""Sizes sanity: an upper bound for every playbook size, and an estimate of a run's length.

Both come from lab/data/run_sizes.yaml (documented there and in docs/faults-and-exit-codes.md):
`check(data)` gives the sizes of a playbook that pass their bound (playbooks.load refuses them, exit
2); `estimate(...)` gives the run's expected seconds on an accelerator, printed before anything
boots and recorded in the manifest (`estimate`); `refuse_long(...)` refuses a run whose estimate is
past the bound (max_hours, or --max-hours / LAB_MAX_HOURS). The estimate is an order of magnitude:
guest work per unit (an open(), a map operation, a load second) times the accelerator's slowdown
(icount: a guest second is ~10 s of real time), plus the time budgets asked for as they are.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from lab.core.config import DATA, InputError
from lab.guest.size import memory_bytes


@functools.cache
def data() -> dict[str, Any]:
    return yaml.safe_load((DATA / "run_sizes.yaml").read_text())


def _over(name: str, v: Any, bound: int) -> str | None:
    values = v if isinstance(v, list) else [v]
    big = [x for x in values if isinstance(x, int) and not isinstance(x, bool) and x > bound]
    return f"{name} {big[0]} is above its bound {bound}" if big else None


def check(suites: dict[str, Any], vm: dict[str, Any], repetitions: Any) -> list[str]:
    """What of a playbook's sizes is past its bound (lab/data/run_sizes.yaml), in words."""
    b = data()["bounds"]
    out = []
    for suite, params in suites.items():
        for name, bound in (b.get(suite) or {}).items():
            if isinstance(params, dict) and name in params:
                why = _over(name, params[name], bound)
                if why:
                    out.append(f"suite {suite}: {why}")
    for suite, params in suites.items():  # parameters the suites' own checks leave to the agent
        if suite == "maps" and isinstance(params, dict):
            for name in ("mem_max_entries",):
                v = params.get(name)
                if v is not None and (not isinstance(v, list) or not all(
                        isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)):
                    out.append(f"suite maps: {name} must be a list of positive integers, not {v!r}")
            v = params.get("sparse_alloc_limit")
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                out.append(f"suite maps: sparse_alloc_limit must be a positive integer (bytes), not {v!r}")
    cpus = vm.get("cpus")
    if isinstance(cpus, int) and cpus > b["vm"]["cpus"]:
        out.append(f"vm: cpus {cpus} is above its bound {b['vm']['cpus']}")
    try:
        mem = memory_bytes(str(vm.get("memory", "2G")))
    except ValueError:
        mem = 0  # vm_spec says what is wrong with it
    if mem > b["vm"]["memory_gib"] << 30:
        out.append(f"vm: memory {vm.get('memory')} is above its bound {b['vm']['memory_gib']}G")
    if isinstance(repetitions, int) and repetitions > b["repetitions"]:
        out.append(f"repetitions {repetitions} is above its bound {b['repetitions']}")
    return out


@dataclass
class Estimate:
    accelerator: str
    seconds: float
    parts: dict[str, float] = field(default_factory=dict)  # per suite
    why_accel: str = ""

    def json(self) -> dict[str, Any]:
        return {"accelerator": self.accelerator, "seconds": round(self.seconds), "suites": {
            k: round(v) for k, v in self.parts.items()}, "accelerator_assumed": self.why_accel}

    def text(self) -> str:
        parts = ", ".join(f"{k} {human(v)}" for k, v in self.parts.items())
        why = f", {self.why_accel}" if self.why_accel else ""
        return f"estimated length {human(self.seconds)} under {self.accelerator} ({parts}){why}"


def human(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _hooks(p: dict[str, Any], per: dict[str, float]) -> tuple[float, float]:
    """(guest seconds, real seconds of budgets) of the hook suite."""
    from lab.agent.hooks.suite import HOOKS
    from lab.agent.hooks.table import on

    hooks = list(p.get("hooks") or HOOKS)
    variants = [v for v in (p.get("variants") or ["body", "empty"]) if v != "count"] or ["body"]
    trials, stats = int(p.get("trials", 10)), int(p.get("stats_trials", 3))
    rounds = 2 * trials + stats + 2  # ABBA pairs, the stats phase, the talk's methods
    open_hooks = [h for h in hooks if h in on("open") or h in on("batch")]  # the open path and kernel_batch
    nv = len(variants)
    g = len(open_hooks) * nv * rounds * int(p.get("ops", 20000)) * per["open"]
    g += sum(h in hooks for h in on("uprobe")) * nv * len(p.get("uprobe_targets") or ["lea", "nop"]) \
        * rounds * int(p.get("uprobe_ops", 5000)) * per["uprobe"]
    g += sum(h in hooks for h in on("net")) * nv * rounds * int(p.get("net_ops", 5000)) \
        * per["net"]
    if any(h in hooks for h in on("perf")):  # each arm runs until its program arm had perf_samples samples
        arms = 2 + nv
        g += len(p.get("perf_events") or ["sw", "hw"]) * int(p.get("perf_trials", 6)) * arms * sum(
            int(p.get("perf_samples", 1000)) / max(1, int(f)) for f in (p.get("freqs") or [99, 999, 9999]))
    if p.get("kernel_batch", True):
        g += len(open_hooks) * nv * int(p.get("batch_trials", 30)) * 2 * int(p.get("batch_block_ms", 100)) / 1000
    g += len(hooks) * nv * per["row"]
    real = len(open_hooks) * nv * int(p.get("budget_s", 300)) if p.get("halfwidth") is not None else 0.0
    return g, real


def _maps(p: dict[str, Any], per: dict[str, float]) -> tuple[float, float]:
    from lab.agent.maps.suite import DEFAULT_TYPES

    types = len(p.get("types") or DEFAULT_TYPES)
    ops_n = len(p.get("operations") or ["update", "lookup"])
    trials = int(p.get("trials", 5))
    g = types * ops_n * trials * int(p.get("ops", 1048576)) * per["map_op"] * 2  # and its loop baseline
    g += types * (1 + bool(p.get("sparse", True))) * int(p.get("max_entries", 10240)) * per["syscall_op"]
    if p.get("user", True):
        g += types * ops_n * int(p.get("user_trials", 5)) * int(p.get("user_ops", 20000)) * per["syscall_op"] * 2
    if p.get("contention", True):
        g += len(p.get("contention_types") or [0] * 4) * 2 * len(p.get("contention_keys") or [1, 16, 1024]) \
            * trials * int(p.get("ops", 1048576)) * per["map_op"]
    levels = len(p.get("occupancy_levels") or [6, 25, 50, 75, 100])
    g += levels * types * (int(p.get("occupancy_max_entries", 16384)) * per["syscall_op"]
                           + trials * int(p.get("ops", 1048576)) * per["map_op"])
    g += len(p.get("collision_keys") or [64]) * 2 * trials * int(p.get("ops", 1048576)) * per["map_op"]
    if p.get("memory", True):
        g += types * sum(p.get("mem_max_entries") or [1024, 10240, 102400]) * per["syscall_op"]
    g += types * (ops_n + levels + 4) * per["row"]
    return g, 0.0


def _tools(p: dict[str, Any], per: dict[str, float], load_slow: float = 1.0) -> tuple[float, float]:
    """(guest seconds of starts, real seconds of load phases and budgets) of the tool suite."""
    from lab.agent.tools.suite import TOOLS

    n = len(p.get("tools") or list(TOOLS)) + len(p.get("user_tools") or {}) + bool(p.get("combined", True))
    proof = int(p.get("proof_seconds", 2))
    phases = proof + int(p.get("count_seconds", proof)) + 2 * int(p.get("trials", 5)) * int(p.get("seconds", 3))
    g = n * (2 + 2 * int(p.get("trials", 5))) * per["tool_start"]
    real = n * phases * load_slow + (n * int(p.get("budget_s", 600)) if p.get("halfwidth") is not None else 0.0)
    return g, real


SUITES = {"hooks": _hooks, "maps": _maps, "tools": _tools}


def estimate(suites: dict[str, dict[str, Any]], accelerator: str, why_accel: str = "") -> Estimate:
    """The run's expected length in real seconds on `accelerator` (host, kvm, tcg, icount)."""
    d = data()
    slow = float(d["slowdown"].get(accelerator, max(d["slowdown"].values())))
    est = Estimate(accelerator, float(d["boot_seconds"].get(accelerator, 0)), why_accel=why_accel)
    for suite, params in suites.items():
        if suite in SUITES:
            extra = (float(d["load_slowdown"].get(accelerator, 1.5)),) if suite == "tools" else ()
            g, real = SUITES[suite](params or {}, d["seconds_per"], *extra)
            est.parts[suite] = g * slow + real
            est.seconds += est.parts[suite]
    return est


def max_hours(asked: str | float | None = None) -> float:
    """The bound on a run's estimated length: --max-hours, else LAB_MAX_HOURS, else the data file's."""
    for v, where in ((asked, "--max-hours"), (os.environ.get("LAB_MAX_HOURS"), "LAB_MAX_HOURS")):
        if v not in (None, ""):
            try:
                h = float(v)  # type: ignore[arg-type]
            except ValueError:
                h = -1.0
            if not h > 0 or h == float("inf"):
                raise InputError(f"{where} takes a positive number of hours (e.g. 24), not {v!r}")
            return h
    return float(data()["max_hours"])


def refuse_long(est: Estimate, hours: float, where: str = "") -> None:
    if est.seconds > hours * 3600:
        raise InputError(f"{where}{est.text()}: above the bound of {hours:g} h; make the playbook's sizes smaller, "
                         f"or allow it with --max-hours {max(1, int(est.seconds / 3600) + 1)} (or LAB_MAX_HOURS)")
