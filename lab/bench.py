"""bench: open a target for a kernel, run the playbook's suites there, keep every row."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from typing import Any

from . import playbooks
from .build import build_bpf
from .config import ROOT, LabError, Paths
from .results import RunStore, new_run_id
from .runner import run_suite


def lab_version() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def host_info() -> dict[str, Any]:
    from .agent.common import cpu_model

    return {"host_cpu_model": cpu_model(), "host_cpus": os.cpu_count(), "host_kernel": platform.release()}


def run(suites: list[str] | None, kernel: str, playbook: str = "default", report: bool = False,
        paths: Paths | None = None) -> RunStore:
    from . import labs

    paths = paths or Paths()
    pb = playbooks.load(playbook)
    chosen = suites or list(pb.suites)
    for s in chosen:
        if s not in pb.suites and suites is None:
            raise LabError(f"suite {s} not in playbook {pb.path}")
    print(f"building BPF programs into {paths.build / 'bpf'} ...", flush=True)
    build_bpf(paths)
    with labs.open_target(kernel, pb.vm, paths) as target:
        info = target.describe()
        run_id = new_run_id(info.get("kernel_release", kernel))
        manifest = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "playbook": str(pb.path.relative_to(ROOT)) if pb.path.is_relative_to(ROOT) else str(pb.path),
            "playbook_name": pb.name,
            "lab_version": lab_version(),
            "suites": {s: pb.suites.get(s, {}) for s in chosen},
            "guest": {"vcpus": pb.vm.cpus, "memory": pb.vm.memory} if target.accelerator != "host" else None,
            **host_info(),
            **info,
        }
        store = RunStore.create(paths.results, run_id, manifest)
        print(f"run {run_id}: kernel {info.get('kernel_release')} accelerator {target.accelerator}"
              + ("  (emulated: timings check the pipeline, they are not overhead figures)"
                 if target.accelerator == "tcg" else ""), flush=True)
        outcome = {}
        for s in chosen:
            t0 = time.monotonic()
            print(f"suite {s} ...", flush=True)
            outcome[s] = run_suite(target, store, s, pb.suites.get(s, {}))
            print(f"suite {s}: {outcome[s]} in {time.monotonic() - t0:.0f} s", flush=True)
            store.update_manifest(outcome=outcome)
    print(f"rows in {store.path}", flush=True)
    if report:
        from . import report as report_mod

        out = report_mod.write_report([store.path], store.path)
        print(f"report: {out}", flush=True)
    return store
