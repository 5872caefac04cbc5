"""The kernel matrix: one playbook, many kernels and targets, guests in parallel, one report.

Each kernel/target of a playbook's matrix is one job: a child `bench.all --no-report` process in
its own session (so a signal reaches it and everything it started), its output kept in a log in
the matrix directory and read for progress. Kernels and images are prepared one after another
first (they share the cache), then guests run in parallel, as many as the host's cores and
memory allow (a guest's CPU time is not shared with another guest while it measures), longest
first by the previous matrix run's durations. Targets without a VM on this machine (`host`) run
alone afterwards, so no guest disturbs them; ssh:// targets run beside the guests. One job's
failure does not stop the others. The matrix directory (results/matrix-<id>/) holds matrix.json
(jobs, run directories, status, seconds) and the report across every run.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.core.config import IMPORT_ROOT, InputError, LabError, Paths
from lab.guest.accel import asked
from lab.run import playbooks

RUN_LINE = re.compile(r"^run (\S+): kernel (\S+) accelerator (\S+)")
SUITE_LINE = re.compile(r"^suite (\w+) \.\.\.")
ESTIMATE_LINE = re.compile(r"^estimated length (\d+(?:\.\d+)?) (s|min|h) ")  # lab/run/sizes.py's Estimate.text
# the tool suite's progress line with --halfwidth (lab/agent/tools/precision.py)
PAIR_LINE = re.compile(r"^\[tools\] (\S+): (pair \d+, \w+ loss \S+ \+-\S+ points \(target \+-[^)]*\), \d+ of \d+ s)")
STOP_GRACE = 10.0  # seconds a job gets to stop after SIGTERM before it is killed


@dataclass
class Job:
    name: str  # kernel alias/path or target
    rep: int
    kind: str  # guest | host | remote
    phase: str = "waiting"
    started: float | None = None
    ended: float | None = None
    rc: int | None = None
    run_id: str = ""
    kernel_release: str = ""
    accelerator: str = ""
    reason: str = ""
    suite_no: int = 0
    log: str = ""
    status: str = ""  # the run's manifest status once done
    rows: dict[str, int] = field(default_factory=dict)
    estimate: float | None = None  # the run's estimated seconds, as its bench printed it before the boot

    @property
    def key(self) -> str:
        return self.name + (f"#{self.rep}" if self.rep > 1 else "")

    @property
    def seconds(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.monotonic()) - self.started

    @property
    def failed(self) -> bool:
        return self.rc not in (None, 0)


def job_kind(name: str) -> str:
    return "host" if name == "host" else "remote" if name.startswith("ssh://") else "guest"


def slots(pb: playbooks.Playbook, accelerator: str) -> int:
    """How many guests can measure at once: a TCG guest runs on one host thread
    (`-accel tcg,thread=single`), a KVM guest on one per vCPU; each needs its memory plus ~25%."""
    cores = os.cpu_count() or 1
    per_guest = 1 if accelerator in ("tcg", "icount") else pb.vm.cpus
    by_cpu = max(1, cores // per_guest)
    try:
        avail = next(int(ln.split()[1]) * 1024 for ln in open("/proc/meminfo") if ln.startswith("MemAvailable:"))
        by_mem = max(1, int(avail // (playbooks.memory_bytes(pb.vm.memory) * 1.25)))
    except (OSError, StopIteration, ValueError):
        by_mem = 1
    return max(1, min(by_cpu, by_mem))


def previous_seconds(results_dir: Path) -> dict[str, float]:
    """Seconds per job from the newest earlier matrix run (for longest-first ordering)."""
    for m in sorted(results_dir.glob("matrix-*/matrix.json"), reverse=True):
        try:
            jobs = json.loads(m.read_text()).get("jobs", [])
            return {j["name"]: float(j["seconds"]) for j in jobs if j.get("seconds")}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return {}


class Matrix:
    def __init__(self, playbook: str, paths: Paths | None = None, jobs: int | None = None, view=None,
                 accel: str = "", max_hours: str | float | None = None):
        self.paths = paths or Paths()
        self.max_hours = max_hours  # passed to every job's bench (each refuses a run past it, exit 2)
        self.pb = playbooks.load(playbook)
        self.accel = accel  # --accel for every guest job ("" = the playbook's vm.accel, else chosen)
        if not self.pb.matrix:
            raise InputError(f"playbook {self.pb.path} names no 'kernels:' or 'targets:' to run: add e.g. "
                           "kernels: [\"6.12\"] and/or targets: [host], or use bench.all --kernel K")
        self.max_jobs = jobs
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.id = f"matrix-{stamp}-{secrets.token_hex(2)}"
        self.dir = self.paths.results / self.id
        self.jobs = [Job(n, r, job_kind(n)) for n in self.pb.matrix for r in range(1, self.pb.repetitions + 1)]
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.stopping: int | None = None
        self.view = view
        self.accelerator = "tcg"

    # --- one job -------------------------------------------------------------------------------
    def _set(self, job: Job, **kw: Any) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(job, k, v)
        if self.view:
            self.view.update(self)

    def command(self, job: Job) -> list[str]:
        return [sys.executable, "-m", "lab.cli", "bench.all", "--kernel", job.name,
                "--playbook", str(self.pb.path), "--no-report"] + (["--accel", self.accel] if self.accel else []) \
            + (["--max-hours", str(self.max_hours)] if self.max_hours else [])

    def run_job(self, job: Job) -> None:
        if self.stopping:
            self._set(job, phase="skipped", rc=128 + self.stopping, reason="the matrix was stopped")
            return
        log = self.dir / f"{re.sub(r'[^A-Za-z0-9._-]', '_', job.key)}.log"
        self._set(job, phase="starting", started=time.monotonic(), log=str(log))
        nsuites = len(self.pb.suites)
        with log.open("w") as out:
            proc = subprocess.Popen(self.command(job), cwd=IMPORT_ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"))
            with self.lock:
                self.procs[job.key] = proc
            assert proc.stdout
            last = ""
            for line in proc.stdout:
                out.write(line)
                out.flush()
                line = line.rstrip("\n")
                if line.strip():
                    last = line.strip()
                if m := ESTIMATE_LINE.match(line):
                    self._set(job, estimate=float(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)])
                elif m := RUN_LINE.match(line):
                    self._set(job, run_id=m.group(1), kernel_release=m.group(2), accelerator=m.group(3))
                elif m := SUITE_LINE.match(line):
                    n = job.suite_no + 1
                    self._set(job, suite_no=n, phase=f"suite {n} of {nsuites}: {m.group(1)}")
                elif m := PAIR_LINE.match(line):
                    self._set(job, phase=f"suite {job.suite_no} of {nsuites}: tools: {m.group(1)} {m.group(2)}")
                elif line.startswith("building BPF"):
                    self._set(job, phase="building BPF")
                elif line.startswith(("lab ", "kernel ")) and "booting" in line:
                    self._set(job, phase="booting")
                elif "apt-get download" in line or line.startswith("kernel "):
                    self._set(job, phase="fetching kernel")
                elif "image" in line and "build" in line:
                    self._set(job, phase="building image")
            rc = proc.wait()
        with self.lock:
            self.procs.pop(job.key, None)
        status, rows = "", {}
        if job.run_id:
            try:
                man = json.loads((self.paths.results / job.run_id / "manifest.json").read_text())
                status = man.get("status", "")
                for counts in (man.get("outcome") or {}).values():
                    for k, v in counts.items():
                        rows[k] = rows.get(k, 0) + int(v)
            except (OSError, ValueError):
                status = ""
        reason = "" if rc == 0 else last[-200:]
        phase = "done" if rc == 0 else "interrupted" if self.stopping and (rc >= 128 or rc < 0) else "failed"
        self._set(job, phase=phase, rc=rc, ended=time.monotonic(), status=status or
                  ("failed" if rc else "complete"), rows=rows, reason=reason)

    # --- the whole matrix ----------------------------------------------------------------------
    def prepare(self) -> None:
        """Fetch every kernel and build its image one at a time (they share the cache). A kernel that
        cannot be prepared fails its jobs here, with the reason; the others go on."""
        from lab.guest import accel, images
        from lab.guest.bpfbuild import build_bpf
        from lab.kernels import catalog as kernels

        build_bpf(self.paths)  # once, before the jobs (each child finds it up to date)
        for name in dict.fromkeys(j.name for j in self.jobs if j.kind == "guest"):
            mine = [j for j in self.jobs if j.name == name]
            for j in mine:
                self._set(j, phase="fetching kernel")
            try:
                k = kernels.resolve(name, self.paths)
                for j in mine:
                    self._set(j, phase="building image", kernel_release=k.release)
                images.image_for("debian-12", k, self.paths, log=lambda m: None, packages=self.pb.vm.packages)
                self.accelerator = accel.choose(k.vmlinuz, self.paths.cache,
                                                force=self.accel or self.pb.vm.accel or None).name
                for j in mine:
                    self._set(j, phase="waiting")
            except LabError as e:
                for j in mine:
                    self._set(j, phase="failed", rc=1, status="failed", reason=str(e).splitlines()[0][:200])

    def _pool(self, todo: list[Job], width: int) -> None:
        threads: list[threading.Thread] = []
        queue = list(todo)
        while queue or threads:
            threads = [t for t in threads if t.is_alive()]
            while queue and len(threads) < width:
                t = threading.Thread(target=self.run_job, args=(queue.pop(0),), daemon=True)
                t.start()
                threads.append(t)
            time.sleep(0.2)

    def stop(self, signum: int) -> None:
        """Stop every running job: SIGTERM to its session (the child stops its agent and VM and
        marks its run interrupted), SIGKILL after STOP_GRACE seconds."""
        self.stopping = self.stopping or signum
        with self.lock:
            procs = list(self.procs.values())
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def run(self) -> int:
        """Run the matrix; returns the exit code (0 only if every job completed)."""
        self.dir.mkdir(parents=True)
        prev = previous_seconds(self.paths.results)
        t0 = time.monotonic()
        self.save()
        self.prepare()
        ready = [j for j in self.jobs if j.rc is None]
        guests = sorted((j for j in ready if j.kind == "guest"), key=lambda j: -prev.get(j.name, 0.0))
        remote = [j for j in ready if j.kind == "remote"]
        width = self.max_jobs or slots(self.pb, self.accelerator)
        self._pool(guests + remote, width + len(remote))
        self._pool([j for j in ready if j.kind == "host"], 1)  # measured alone
        self.seconds = time.monotonic() - t0
        self.save()
        return 128 + self.stopping if self.stopping else (1 if any(j.failed for j in self.jobs) else 0)

    def run_dirs(self) -> list[Path]:
        return [self.paths.results / j.run_id for j in self.jobs
                if j.run_id and (self.paths.results / j.run_id / "manifest.json").exists()]

    def save(self) -> None:
        data = {"id": self.id, "playbook": str(self.pb.path), "kernels": list(self.pb.kernels),
                "targets": list(self.pb.targets), "repetitions": self.pb.repetitions,
                "seconds": round(getattr(self, "seconds", 0.0), 1),
                "jobs": [dict(asdict(j), seconds=round(j.seconds, 1) if j.seconds else None) for j in self.jobs]}
        (self.dir / "matrix.json").write_text(json.dumps(data, indent=2) + "\n")


def run_playbook(playbook: str, jobs: int | None = None, report: bool = True, paths: Paths | None = None,
                 accel: str = "", max_hours: str | float | None = None) -> int:
    """`bench.run`: run the matrix with a live view, handle SIGINT/SIGTERM (every job is stopped
    within seconds, its rows kept), print the summary table and write the report. Returns the
    exit code: 0 all complete, 1 some job failed, 128 + signal when stopped."""
    from lab.run import matrixview

    if accel:
        accel = asked(accel, "--accel")
    m = Matrix(playbook, paths, jobs, accel=accel, max_hours=max_hours)
    from lab.run import preflight

    pb = dataclasses.replace(m.pb, vm=m.pb.vm.with_accel(accel)) if accel else m.pb
    ests = {n: preflight.check(n, pb, list(pb.suites), m.paths, max_hours) for n in dict.fromkeys(pb.matrix)}
    for j in m.jobs:  # every job's estimate before anything is fetched or booted (the live view compares)
        j.estimate = ests[j.name].seconds
    print("estimates: " + "; ".join(f"{n}: {e.text()}" for n, e in ests.items()), flush=True)
    print(f"matrix {m.id}: {', '.join(m.pb.matrix)} x {m.pb.repetitions}, suites {', '.join(m.pb.suites)}; "
          f"logs and report in {m.dir}", flush=True)

    def on_signal(signum: int, frame: object) -> None:
        if m.stopping:
            return
        sys.stderr.write(f"\n{signal.Signals(signum).name}: stopping every job (rows are kept) ...\n")
        m.stop(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with matrixview.view_for(m) as view:
            m.view = view
            code = m.run()
    finally:
        m.stop(signal.SIGTERM) if m.procs else None
        for s, h in old.items():
            signal.signal(s, h)
    print(matrixview.summary(m), flush=True)
    dirs = m.run_dirs()
    if report and dirs:
        from lab.report import page as report_mod

        try:
            out = report_mod.write_report(dirs, m.dir)
            print(f"report across {len(dirs)} run(s): {out}", flush=True)
        except Exception as e:  # noqa: BLE001 - the runs are kept; the report can be redone
            print(f"error: the report could not be written ({type(e).__name__}: {e}); rows are in the run "
                  f"directories: ./labctl results.report --run RUN ...", file=sys.stderr, flush=True)
            code = code or 1
    failed = [j.key for j in m.jobs if j.failed]
    print(f"matrix {m.id}: {len(m.jobs) - len(failed)} of {len(m.jobs)} complete in {m.seconds:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return code
