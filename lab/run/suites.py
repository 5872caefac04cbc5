"""bench: open a target for a kernel, run the playbook's suites there, keep every row."""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import sys
import time
from typing import Any

import paramiko

from lab.core import interrupt, units
from lab.core.config import ROOT, InputError, LabError, Paths, source_commit
from lab.guest.accel import asked, guest_size
from lab.guest.bpfbuild import build_bpf
from lab.results import costmodel
from lab.results import store as results
from lab.results.store import RunStore, new_run_id
from lab.run import outcome, playbooks, preflight, runlock, sizes
from lab.run.runner import run_suite


def host_info() -> dict[str, Any]:
    from lab.agent.common import cpu_model

    return {"host_cpu_model": cpu_model(), "host_cpus": os.cpu_count(), "host_kernel": platform.release(),
            "host_load_start": host_load()}


def host_load() -> list[float]:
    """The host's 1, 5 and 15 minute load averages: timings on a shared machine carry the load they
    were taken at."""
    return [round(x, 2) for x in os.getloadavg()]


def _outcome_fields(done: dict[str, outcome.SuiteResult]) -> dict[str, Any]:
    return {"outcome": {k: v.counts for k, v in done.items()},
            "suite_outcome": {k: v.as_json() for k, v in done.items()}}


def run(suites: list[str] | None, kernel: str, playbook: str = "default", report: bool = False,
        paths: Paths | None = None, accel: str = "", max_hours: str | float | None = None) -> RunStore | None:
    """Run the suites on `kernel`; returns the run's store (None when it ended before its first row:
    no run directory is left then). The manifest's `status` says how it ended (lab/run/outcome.py).
    A signal raises Interrupted after the run is marked; a failure of the lab itself, LabError."""
    paths = paths or Paths()
    pb = playbooks.load(playbook)
    if accel:
        pb = dataclasses.replace(pb, vm=pb.vm.with_accel(asked(accel, "--accel")))
    chosen = suites or list(pb.suites)
    for s in chosen:
        if s not in pb.suites and suites is None:
            raise InputError(f"suite {s} not in playbook {pb.path}")
    est = preflight.check(kernel, pb, chosen, paths, max_hours)  # bad input: refused before anything is built
    results.check_results_dir(paths.results)  # before anything is built or booted
    print(f"{est.text()} (bound {sizes.max_hours(max_hours):g} h: --max-hours)", flush=True)
    with interrupt.handling():
        from lab.run import labs

        name = kernel if kernel == "host" or kernel.startswith("ssh://") else labs.lab_name(kernel, paths)
        with runlock.held(name, paths, f"{'+'.join(chosen)} of playbook {pb.name}", sizes.human(est.seconds)):
            return _run(chosen, kernel, pb, report, paths, est)


def run_playbook(chosen: list[str], kernel: str, pb: playbooks.Playbook, paths: Paths) -> RunStore | None:
    """One more run inside a running one (lab/run/vcpumem.py): no report, signals already handled."""
    return _run(chosen, kernel, pb, False, paths)


def _run(chosen: list[str], kernel: str, pb: playbooks.Playbook, report: bool, paths: Paths,
         est: sizes.Estimate | None = None) -> RunStore | None:
    from lab.run import labs

    t_start = time.monotonic()
    store: RunStore | None = None
    done: dict[str, outcome.SuiteResult] = {}
    stopped: interrupt.Interrupted | None = None
    unexpected: BaseException | None = None
    failure: str | None = None
    failure_cls: type[LabError] = LabError
    current = ""
    guest_vcpus: int | None = None  # a lab guest's vCPUs (None: host or a remote machine)
    try:
        print(f"building BPF programs into {paths.build / 'bpf'} ...", flush=True)
        build_bpf(paths)
        if "tools" in chosen:  # newer builds of the tools, pushed with the agent (lab/guest/toolbuilds.py)
            from lab.guest import toolbuilds as toolbuild
            from lab.guest import usertools

            toolbuild.prepare(pb.suites.get("tools") or {}, paths)
            usertools.prepare(pb.suites.get("tools") or {}, paths)  # the user's pushed tools, beside them
        with labs.open_target(kernel, pb.vm, paths) as target:
            info = target.describe()
            run_id = new_run_id(info.get("kernel_release", kernel))
            manifest = {
                "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "playbook": str(pb.path.relative_to(ROOT)) if pb.path.is_relative_to(ROOT) else str(pb.path),
                "playbook_name": pb.name,
                "lab_version": source_commit(),
                "suites": {s: pb.params(s, target.accelerator) for s in chosen},
                "icount_overrides": ({s: pb.icount[s] for s in chosen if s in pb.icount}
                                     if target.accelerator == "icount" else None),
                "guest": {"vcpus": guest_size(pb.vm, target.accelerator).cpus, "memory": pb.vm.memory}
                if target.accelerator != "host" else None,
                "cost_model": costmodel.model().manifest() if target.accelerator == "icount" else None,
                "status": "running",
                "status_reason": "",
                "estimate": est.json() if est else None,
                **host_info(),
                **info,
            }
            guest_vcpus = manifest["guest"]["vcpus"] if manifest["guest"] else None
            with interrupt.deferred():
                store = RunStore.create(paths.results, run_id, manifest)
            print(f"run {run_id}: kernel {info.get('kernel_release')} accelerator {target.accelerator}"
                  + ("  (emulated: timings check the pipeline, they are not overhead figures)"
                     if target.accelerator == "tcg" else
                     "  (figures in guest instructions: exact path lengths, not time)"
                     if target.accelerator == "icount" else ""), flush=True)
            base = {"kernel": info.get("kernel_release") or kernel, "accelerator": target.accelerator,
                    "figure_unit": units.of({"accelerator": target.accelerator}),
                    "cpu_model": manifest["host_cpu_model"] if target.accelerator == "host" else "unknown",
                    "vcpus": manifest["guest"]["vcpus"] if manifest["guest"] else manifest["host_cpus"]}
            for s in chosen:
                current = s
                t0 = time.monotonic()
                print(f"suite {s} ..." + (f" (estimated {sizes.human(est.parts[s])})" if est and s in est.parts
                                          else ""), flush=True)
                done[s] = res = outcome.SuiteResult()
                run_suite(target, store, s, pb.params(s, target.accelerator), base, res)
                guess = f" (estimated {sizes.human(est.parts[s])})" if est and s in est.parts else ""
                print(f"suite {s}: {res.counts} in {time.monotonic() - t0:.0f} s{guess}", flush=True)
                if res.fault:
                    print(f"suite {s}: {res.fault}", file=sys.stderr, flush=True)
                with interrupt.deferred():
                    store.update_manifest(**_outcome_fields(done))
                if res.vm_died:
                    break
    except interrupt.Interrupted as e:
        stopped = e
    except LabError as e:
        failure, failure_cls = str(e), type(e)  # InputError stays one: exit 2
    except (OSError, EOFError, paramiko.SSHException) as e:  # the target went away under us
        failure = f"{type(e).__name__}: {e}"
    except BaseException as e:  # a bug: mark the run, keep the traceback
        unexpected = e
        failure = f"{type(e).__name__}: {e}"
    status, reason = outcome.decide(
        done, chosen, failure=failure,
        interrupted=f"interrupted by {stopped.name}" + (f" during suite {current}" if current else "")
        if stopped else None)
    took = time.monotonic() - t_start
    if store is not None:
        if store.remove_if_empty():
            print(f"no row was written: run directory {store.path} removed", file=sys.stderr, flush=True)
            store = None
        else:
            try:
                with interrupt.deferred():
                    store.update_manifest(status=status, status_reason=reason, seconds=round(took, 1),
                                          host_load_end=host_load(),
                                          **_outcome_fields(done))
            except LabError as e:
                print(f"error: the run's status ({status}) could not be recorded: {e}", file=sys.stderr,
                      flush=True)
    where = f"; rows in {store.path}" if store is not None else ""
    if stopped:
        print(f"run {status}: {reason} after {took:.1f} s{where}", file=sys.stderr, flush=True)
        raise stopped
    if unexpected is not None:
        raise unexpected
    if failure:
        raise failure_cls(failure + (f" (run {status}{where})" if store is not None else ""))
    print(f"run {status}{': ' + reason if reason else ''}{where}", flush=True)
    if report and store is not None:
        from lab.report import page as report_mod
        from lab.run import vcpumem

        extra = (vcpumem.extra_runs(pb, kernel, guest_vcpus, paths, run_playbook)
                 if "maps" in chosen and guest_vcpus else [])
        out = report_mod.write_report([store.path, *extra], store.path, legacy=True)
        print(f"report: {out}", flush=True)
    return store
