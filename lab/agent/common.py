"""What every suite shares: the run context, row building, statistics and helper processes."""

import datetime
import math
import os
import platform
import statistics
import subprocess
import sys

from . import mitigations, schema

# every timed row under plain TCG carries this note: its figures are not overhead figures
TCG_NOTE = "emulated (TCG): timings check the pipeline, they are not overhead figures"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


ICOUNT_NOTE = ("in guest instructions (QEMU -icount shift=0): a path length, exact and repeatable; traps are "
               "undercounted and cache misses and mitigations are invisible")


# Under instruction counting the guest has one vCPU: threads never update a map at the same time,
# so contention is not there to be counted (the map suite's contention rows say so).
ICOUNT_SERIAL = ("not measurable in guest instructions: under instruction counting (icount) the guest has one "
                 "vCPU (several would run one after another in one host thread), so updates from every CPU "
                 "never contend; contention needs KVM or bare metal")


class Context:
    """Everything a suite needs: where the BPF objects are, its parameters, and how to emit rows."""

    def __init__(self, suite, run_id, accelerator, bpf_dir, params, out=None):
        self.suite = suite
        self.run_id = run_id
        self.accelerator = accelerator
        self.bpf_dir = bpf_dir
        self.params = params or {}
        self.out = out
        self.base = {
            "schema": schema.SCHEMA_VERSION,
            "run_id": run_id,
            "suite": suite,
            "kernel": platform.release(),
            "accelerator": accelerator,
            "figure_unit": "insn" if accelerator == "icount" else "ns",
            "cpu_model": cpu_model(),
            "vcpus": os.cpu_count() or 1,
            "mitigations": mitigations.read()["mitigations"],  # off | default (lab/agent/mitigations.py)
        }

    def param(self, name, default):
        return self.params.get(name, default)

    def path(self, name):
        """Path of a host-built artefact (BPF object or static helper) in the pushed bpf dir."""
        return os.path.join(self.bpf_dir, name)

    def row(self, status="ok", reason="", **fields):
        row = dict(self.base)
        if self.accelerator == "icount":
            row["note"] = ICOUNT_NOTE
        row.update(fields)
        row["status"] = status
        row["reason"] = reason
        row["time"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return row

    def log(self, msg):
        sys.stderr.write("[%s] %s\n" % (self.suite, msg))
        sys.stderr.flush()


def median_ci(samples, level=0.95):
    """Median and its distribution-free order-statistics interval: the lab's one interval rule, the
    same as the host's lab/results/stats.py median_ci (a test feeds both the same samples). Fewer than
    3 samples: the median and no interval (None, None); 3 to 5: [min, max], which covers less than 95%."""
    if not samples:
        return None, None, None
    med, lo, hi, _ = order_interval(samples, level)
    return med, lo, hi


def timing_fields(method, samples, ops_per_trial):
    """The TIMED schema fields for a list of per-trial ns/op samples."""
    med, lo, hi = median_ci(samples)
    return {
        "method": method,
        "trials": len(samples),
        "ops_per_trial": int(ops_per_trial),
        "ns_median": med,
        "ns_ci_low": lo,
        "ns_ci_high": hi,
        "samples": [round(s, 3) for s in samples],
    }


def check_params(params, known, lists=None, ints=()):
    """Problems with a suite's playbook parameters: unknown names, list values outside their
    choices (lists: name -> allowed values, or a callable returning a problem or None), and
    integer parameters that are not positive integers. Run on the host before anything boots."""
    problems = []
    for name in sorted(set(params) - set(known)):
        problems.append("unknown parameter %r (known: %s)" % (name, ", ".join(sorted(known))))
    for name, allowed in (lists or {}).items():
        value = params.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            problems.append("%s must be a list" % name)
            continue
        for v in value:
            why = allowed(v) if callable(allowed) else (
                None if v in allowed else "one of %s" % ", ".join(str(a) for a in allowed))
            if why:
                problems.append("%s: %r is not %s" % (name, v, why))
    for name in ints:
        v = params.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            problems.append("%s must be a positive integer, not %r" % (name, v))
    return problems


# ---- stopping: signals, and what a stopped or killed agent leaves behind ----

class Interrupted(BaseException):
    """SIGTERM/SIGINT/SIGHUP: unwind through every `finally` (netns, cgroups, tools, mounts).
    A BaseException, so a suite's `except Exception` does not swallow it."""

    def __init__(self, signum):
        BaseException.__init__(self, "received signal %d" % signum)
        self.signum = signum


_STOP = {"signal": None}


def stopping():
    """True once a stop signal arrived: waits in clean-up paths should then be short."""
    return _STOP["signal"] is not None


def _on_signal(signum, frame):
    if _STOP["signal"] is not None:
        return  # already unwinding: let the clean-up finish
    _STOP["signal"] = signum
    raise Interrupted(signum)


def install_signal_handlers():
    import signal

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)


def group_members(pgid):
    """Pids of live processes in process group `pgid`, except this one."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return out


def kill_group_members(pgid, timeout=3.0):
    """SIGKILL what is left of process group `pgid` (helpers, stress-ng workers, tools) and wait
    until they are gone. The agent leads its own group (the host starts it so), so these are ours."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while True:
        pids = group_members(pgid)
        if not pids or time.monotonic() > deadline:
            return pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def cleanup_after(pid):
    """Remove what agent `pid` may have left when it could not clean up (killed with SIGKILL): the
    processes of its group, its network namespaces, its memory cgroup, its tool scratch dirs.
    Every name carries its pid (labhook<pid>tx/rx, lab-maps-<pid>, lab-tools-<pid>-*). Returns
    what it removed."""
    import glob
    import shutil

    done = []
    left = kill_group_members(pid)
    done += ["process %d" % p for p in left]
    ip = shutil.which("ip") or "/usr/sbin/ip"
    for ns in ("labhook%dtx" % pid, "labhook%drx" % pid):
        if os.path.exists("/run/netns/" + ns):
            subprocess.run([ip, "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            done.append("netns " + ns)
    try:
        with open("/proc/mounts") as f:
            mounts = [ln.split()[1] for ln in f if ln.split()[2:3] in (["cgroup2"], ["cgroup"])]
    except OSError:
        mounts = []
    for mnt in mounts:
        path = os.path.join(mnt, "lab-maps-%d" % pid)
        if os.path.isdir(path):
            try:
                os.rmdir(path)
                done.append("cgroup " + path)
            except OSError:
                pass
    import tempfile

    scratch = "/run/lab-scratch"  # tools.SCRATCH_MOUNT
    for base in (tempfile.gettempdir(), scratch):
        for d in glob.glob(os.path.join(base, "lab-tools-%d-*" % pid)):
            shutil.rmtree(d, ignore_errors=True)
            done.append("directory " + d)
    if os.path.ismount(scratch) and subprocess.run(["umount", scratch], stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL).returncode == 0:
        done.append("mount " + scratch)
    return done


# ---- precision asked for: the interval that decides when to stop adding trials ----

MIN_PAIRS = 6  # the fewest samples with a 95% order-statistics interval of the median
LEVEL = 0.95


def order_interval(samples, level=LEVEL):
    """(median, low, high, coverage) of the distribution-free order-statistics interval of the median:
    the same rule as the host's lab/results/stats.py median_ci, in the standard library. Fewer than 6
    samples have no 95% interval ([min, max] covers 1 - 2 / 2^n of the time)."""
    x = sorted(v for v in samples if v is not None)
    n = len(x)
    if n < 3:
        return (statistics.median(x) if x else None), None, None, None

    def cdf(k):  # P(Binomial(n, 1/2) <= k)
        return sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n

    k = 1
    while k + 1 <= n // 2 and cdf(k) <= (1 - level) / 2:
        k += 1
    return statistics.median(x), x[k - 1], x[n - k], 1 - 2 * cdf(k - 1)


def halfwidth(samples):
    """(median, half-width of its 95% interval) of the samples so far (None while no 95% interval exists)."""
    med, lo, hi, coverage = order_interval(samples)
    if lo is None or coverage < LEVEL - 1e-9:
        return med, None
    return med, (hi - lo) / 2.0
