"""The map suite's memory rows again on guests of other vCPU counts, so claim 8 (per-CPU maps grow
with the CPU count) is decided within one run of the main job (issue 30 item 4).

The maps suite's `memory_vcpus` (default playbook: [1, 2, 4]) lists the counts; for each one the
main guest was not, the same kernel boots once more, under plain TCG (memory needs no timing, and
5.10 and 6.1 hang bringing up a second vCPU under icount), runs only the memory rows of the maps
the claim reads (max_entries 10240, one copy each: exact to the page) and stops. Each is a run of its
own (its manifest says so); the main run's report covers them. One guest at a time, after the main
guest has stopped. A failed extra run is reported and skipped: the main run stands.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.core.config import LabError, Paths
from lab.run import playbooks

# what claim 8 reads (lab/data/talk.yaml): each shared type and its per-CPU type, full
TYPES = ["array", "percpu_array", "hash", "percpu_hash", "lru_hash", "lru_percpu_hash"]
MEMORY_ONLY = {"types": TYPES, "operations": [], "contention": False, "contention_keys": [], "collision_keys": [],
               "occupancy_levels": [], "sparse": False, "user": False, "mem_max_entries": [10240],
               "talk_example": False, "mem_copies": 1}


def counts(params: dict[str, Any], main_vcpus: int | None) -> list[int]:
    """The vCPU counts still to measure: the suite's memory_vcpus less the main guest's."""
    return [int(n) for n in params.get("memory_vcpus") or [] if main_vcpus is None or int(n) != main_vcpus]


def playbook_for(pb: playbooks.Playbook, cpus: int) -> playbooks.Playbook:
    """The playbook of one extra guest: the main one's maps memory rows only, `cpus` vCPUs, TCG."""
    maps = {k: v for k, v in (pb.suites.get("maps") or {}).items() if k != "memory_vcpus"}
    maps.update(MEMORY_ONLY)
    return dataclasses.replace(pb, name=f"{pb.name}-memory-{cpus}vcpu", suites={"maps": maps}, icount={},
                               vm=dataclasses.replace(pb.vm, cpus=cpus, accel="tcg"))


def extra_runs(pb: playbooks.Playbook, kernel: str, main_vcpus: int | None, paths: Paths,
               run: Callable[..., Any]) -> list[Path]:
    """Run the extra guests one after another with `run` (lab/run/suites.py run_playbook: chosen
    suites, kernel, playbook, paths -> its store); the run directories that have rows."""
    out: list[Path] = []
    for n in counts(pb.suites.get("maps") or {}, main_vcpus):
        t0 = time.monotonic()
        print(f"memory rows on {n} vCPU{'s' if n != 1 else ''} (claim 8; plain TCG) ...", flush=True)
        try:
            store = run(["maps"], kernel, playbook_for(pb, n), paths)
        except LabError as e:
            print(f"memory rows on {n} vCPUs: {e} (skipped; the main run stands)", file=sys.stderr, flush=True)
            continue
        if store is not None:
            out.append(store.path)
        print(f"memory rows on {n} vCPU{'s' if n != 1 else ''}: {time.monotonic() - t0:.0f} s", flush=True)
    return out
