"""The latency workloads: real programs from Debian where one exists, each giving every request's
latency in ns. The one registry of them (WORKLOADS); the tool suite runs each with and without a
tool, the hook suite runs "open" with and without each attach type's program.

  rr     sockperf (Debian sockperf): TCP request/response on loopback, 64-byte messages, its
         under-load mode at a fixed rate (`rate` messages/s, every one answered). Latency: the round
         trip from the message's intended send time, its slot on the fixed-rate schedule (the
         schedule's origin + i / rate), to its reply: sockperf keeps the schedule and sends late
         messages in a burst after a stall, and its --full-log gives each message's send and receive
         time, so a stall counts against every message it delayed (coordinated omission corrected).
  timer  cyclictest (Debian rt-tests): timer wake-up latency of one SCHED_OTHER thread, a wake-up
         every 1e6 / `rate` us, each one's lateness in ns (-N -v). Its wake-ups are absolute times on
         a fixed period, so a late one does not move the next: no omission by construction.
  disk   fio (Debian fio): 4 KiB random reads with O_DIRECT (block I/O: what biolatency sees) from a
         32 MiB file in the scratch directory, psync, one at a time, `rate` per second; each I/O's
         submit-to-completion latency from its per-I/O log. Not corrected: fio times an I/O from when
         it was issued, and its log's time stamps are in ms, too coarse to rebuild the intended slots,
         so an I/O stalled longer than 1 / rate hides those that would have been issued meanwhile.
  open   the lab's own loop (hookbench openlat, C: no program does this): openat+close of /dev/null,
         each call timed from the end of the one before (so a stall between calls is counted; a closed
         loop's omission is the time between calls, and there is none unseen).
Standard library only.
"""

import os
import shutil
import socket
import subprocess
import time

from ..tools.load import free_port

SECONDS = 3  # per trial (rr, timer, disk)
OPEN_OPS = 20000  # openat+close calls per trial (open)
RATES = {"rr": 5000, "timer": 5000, "disk": 5000}  # requests per second (x SECONDS: >= 10000 per arm)
PER = {"rr": "request (TCP round trip)", "timer": "wake-up", "disk": "I/O (4 KiB read)", "open": "openat+close"}
PACKAGE = {"rr": "sockperf", "timer": "rt-tests", "disk": "fio", "open": None}
PROGRAM = {"rr": "sockperf", "timer": "cyclictest", "disk": "fio", "open": None}
CO = {
    "rr": "corrected: each message's latency runs from its slot on sockperf's fixed-rate schedule",
    "timer": "none possible: cyclictest wakes at absolute times on a fixed period",
    "disk": "not corrected: fio times each I/O from its issue (its log's ms stamps cannot rebuild the slots)",
    "open": "counted: each call is timed from the end of the one before, so no time between calls goes unseen",
}
NAMES = tuple(PER)


class Missing(Exception):
    """The workload's program is not installed in the target."""


def label(name, seconds, rate, ops):
    """What the row's `load` says: the program and its parameters."""
    if name == "rr":
        return "sockperf under-load --tcp 127.0.0.1 -m 64 --mps %d (%d s)" % (rate, seconds)
    if name == "timer":
        return "cyclictest -t 1 --policy=other -i %d (%d s)" % (1000000 // rate, seconds)
    if name == "disk":
        return "fio randread 4k direct psync rate_iops=%d (%d s)" % (rate, seconds)
    return "openat+close /dev/null x %d (hookbench openlat)" % ops


def program(name):
    """The workload's executable, or Missing with the Debian package to install."""
    if PROGRAM[name] is None:
        return None
    path = shutil.which(PROGRAM[name]) or next(
        (p for p in ("/usr/bin/" + PROGRAM[name], "/usr/sbin/" + PROGRAM[name]) if os.path.exists(p)), None)
    if not path:
        raise Missing("%s not found: install Debian's %s" % (PROGRAM[name], PACKAGE[name]))
    return path


# ---- parsers (pure, unit-tested on the programs' real output) ----

def sockperf_latencies(log_text, rate):
    """RTT in ns of each logged message from its intended send time. sockperf's --full-log lines are
    "packet, txTime(sec), rxTime(sec), latency(usec)"; the schedule's origin is the earliest
    tx - i / rate (no message leaves before its slot)."""
    rows = []
    for line in log_text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            try:
                rows.append((int(parts[0]), float(parts[1]), float(parts[2])))
            except ValueError:
                continue
    if not rows:
        return []
    period = 1.0 / rate
    first = rows[0][0]
    origin = min(tx - (i - first) * period for i, tx, _ in rows)
    return [int(round((rx - (origin + (i - first) * period)) * 1e9)) for i, _, rx in rows]


def cyclictest_latencies(text):
    """Wake-up latencies in ns from cyclictest -N -v ("thread: index: latency" lines)."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(":")]
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            out.append(int(parts[2]))
    return out


def fio_latencies(log_text):
    """Per-I/O latencies in ns from fio's lat log ("time_ms, latency_ns, direction, bs, offset")."""
    out = []
    for line in log_text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[1].isdigit():
            out.append(int(parts[1]))
    return out


# ---- running them ----

def _wait_listening(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("sockperf server exited %d" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sockperf server did not listen on port %d within %g s" % (port, timeout))


class Workload:
    """One workload in one directory: start() (the rr server), trial() -> latencies in ns, stop()."""

    def __init__(self, name, workdir, seconds=SECONDS, rate=None, ops=OPEN_OPS, helper=None, obj=None):
        self.name, self.workdir, self.seconds, self.ops = name, workdir, int(seconds), int(ops)
        self.rate = int(rate or RATES.get(name, 0))
        self.helper, self.obj = helper, obj
        self.server = None
        self.port = None
        self.exe = program(name)

    def label(self):
        return label(self.name, self.seconds, self.rate, self.ops)

    def start(self):
        if self.name == "rr":
            self.port = free_port()
            self.server = subprocess.Popen([self.exe, "server", "--tcp", "-i", "127.0.0.1", "-p", str(self.port)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _wait_listening(self.port, self.server)
            except Exception:
                self.stop()
                raise
        elif self.name == "disk":
            self.fio([])  # lays the file out (and warms the path) outside any trial

    def stop(self):
        if self.server is not None:
            if self.server.poll() is None:
                self.server.terminate()
                try:
                    self.server.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.server.kill()
                    self.server.wait()
            self.server = None

    def _run(self, cmd, timeout):
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("%s exit %d: %s" % (os.path.basename(cmd[0]), p.returncode,
                                                   (p.stderr or p.stdout).strip()[-400:]))
        return p.stdout

    def fio(self, log_args, seconds=1):
        return self._run([self.exe, "--name=lat", "--directory=" + self.workdir, "--rw=randread", "--bs=4k",
                          "--size=32M", "--direct=1", "--ioengine=psync", "--iodepth=1", "--time_based",
                          "--runtime=%ds" % seconds, "--rate_iops=%d" % self.rate, "--output-format=terse"]
                         + log_args, timeout=seconds * 4 + 120)

    def trial(self):
        """One trial's latencies, ns."""
        if self.name == "rr":
            log = os.path.join(self.workdir, "sockperf.csv")
            self._run([self.exe, "under-load", "--tcp", "-i", "127.0.0.1", "-p", str(self.port), "-m", "64",
                       "-t", str(self.seconds), "--mps", str(self.rate), "--reply-every", "1", "--full-log", log],
                      self.seconds * 4 + 60)
            with open(log) as f:
                text = f.read()
            os.unlink(log)
            return sockperf_latencies(text, self.rate)
        if self.name == "timer":
            loops = self.rate * self.seconds
            out = self._run([self.exe, "-q", "-N", "-v", "-t", "1", "--policy=other", "-i",
                             str(1000000 // self.rate), "-l", str(loops)], self.seconds * 4 + 60)
            return cyclictest_latencies(out)
        if self.name == "disk":
            stem = os.path.join(self.workdir, "fiolat")
            self.fio(["--write_lat_log=" + stem, "--log_avg_msec=0"], self.seconds)
            path = stem + "_lat.1.log"
            with open(path) as f:
                text = f.read()
            for suffix in ("_lat.1.log", "_clat.1.log", "_slat.1.log"):
                if os.path.exists(stem + suffix):
                    os.unlink(stem + suffix)
            return fio_latencies(text)
        return open_latencies(self.helper, self.obj, "none", 1, self.ops)[0]["base"]


def open_latencies(helper, obj, prog, trials, ops, timeout=900):
    """hookbench openlat: per trial {"order", "base": [ns...], "hook": [ns...] (absent for prog none),
    "events": runs during the hooked arm, "base_events": during the base arm}. Refusals raise the hook
    suite's Refused (exit 2/3)."""
    from ..hooks.hookbench import run_bench

    recs = run_bench(helper, "openlat", ["--obj", obj, "--prog", prog, "--trials", trials, "--ops", ops],
                     timeout=timeout)
    out = {}
    for r in recs:
        if r.get("kind") != "lat":
            continue
        t = out.setdefault(r["trial"], {"order": r["order"]})
        t[r["arm"]] = r["ns"]
        t["events" if r["arm"] == "hook" else "base_events"] = r["events"]
    return [out[k] for k in sorted(out)]
