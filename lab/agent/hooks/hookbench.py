"""The hook suite's C helper (bpf/helpers/hookbench/): running it, and what its exit codes mean.
Standard library only."""

import json
import subprocess


class Refused(Exception):
    """The kernel refused to load or attach (helper exit 2 or 3): an unsupported row."""


class Failed(Exception):
    """Anything else went wrong: an error row."""


def _reason(stderr):
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return " | ".join(lines)[-1500:] or "no message"


def run_bench(helper, mode, args, timeout=900):
    """Run hookbench; return its records. Exit 2/3 raises Refused, anything else Failed."""
    proc = subprocess.run([helper, mode] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode in (2, 3):
        raise Refused(_reason(proc.stderr))
    if proc.returncode != 0:
        raise Failed("hookbench %s exit %d: %s" % (mode, proc.returncode, _reason(proc.stderr)))
    return [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
