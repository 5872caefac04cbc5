"""What every suite shares: the run context, row building, statistics and helper processes."""

import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys

from . import schema


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
            "cpu_model": cpu_model(),
            "vcpus": os.cpu_count() or 1,
        }

    def param(self, name, default):
        return self.params.get(name, default)

    def path(self, name):
        """Path of a host-built artefact (BPF object or static helper) in the pushed bpf dir."""
        return os.path.join(self.bpf_dir, name)

    def row(self, status="ok", reason="", **fields):
        row = dict(self.base)
        row.update(fields)
        row["status"] = status
        row["reason"] = reason
        row["time"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return row

    def log(self, msg):
        sys.stderr.write("[%s] %s\n" % (self.suite, msg))
        sys.stderr.flush()


def median_ci(samples, level=0.95, resamples=2000, seed=1):
    """Median and a bootstrap confidence interval of the median (percentile method)."""
    if not samples:
        return None, None, None
    med = statistics.median(samples)
    if len(samples) < 3:
        return med, min(samples), max(samples)
    rng = random.Random(seed)
    n = len(samples)
    meds = sorted(statistics.median([samples[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    lo = meds[int((1 - level) / 2 * resamples)]
    hi = meds[min(resamples - 1, int((1 + level) / 2 * resamples))]
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


class HelperError(Exception):
    pass


def run_helper(path, args, timeout=600):
    """Run a host-built static helper that prints one JSON object per line; return them.

    A non-zero exit raises HelperError carrying the helper's stderr (which holds the kernel's
    reason, e.g. libbpf's error text, when a load or attach is refused).
    """
    proc = subprocess.run([path] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    if proc.returncode != 0:
        raise HelperError((proc.stderr.strip() or proc.stdout.strip() or "exit %d" % proc.returncode)[-2000:])
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
