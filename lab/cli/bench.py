"""bench.*: run suites on a kernel (a lab guest, or `host` for this machine's own kernel)."""

from invoke import Exit, task

from lab.core import interrupt
from lab.core.config import LabError
from lab.run import suites as bench

KHELP = "kernel alias (see kernels.list), a path to a kernel, or 'host' for this machine's kernel"
PHELP = "playbook name or YAML file with suite parameters (default: playbooks/default.yaml)"
THELP = {"tool": "NAME=COMMAND (a command in the target) or NAME=push:PATH [ARGS] (a local executable pushed "
                 "with the agent): the user's tool, measured beside the playbook's tools (repeatable)",
         "bpftrace": "a bpftrace program to measure, run by the target's bpftrace (repeatable)",
         "load": "stress-ng stressors the --tool/--bpftrace tools watch, comma-separated (e.g. open)",
         "halfwidth": "points: add ABBA pairs until the loss's 95% interval is within +-H points",
         "budget": "seconds per tool for --halfwidth's pairs (default 600)"}
MHELP = ("refuse a run whose estimated length (printed before the boot) is above this many hours (default 12, "
         "or LAB_MAX_HOURS; lab/data/run_sizes.yaml)")
LHELP = ("latency percentiles instead of throughput: request/response, timer, disk and open-path workloads with "
         "and without each tool (lab/agent/latency/; --halfwidth: pairs until the p99 change is within +-H% of the "
         "baseline p99)")
AHELP = ("guest accelerator: kvm, icount (TCG counting instructions: figures in guest instructions) or tcg "
         "(plain TCG: pipeline check only); default: the playbook's vm.accel, else KVM where it works, else icount")


def number(value, option: str, what: str, cast=float):
    """An option's value as a number (None when not given), or exit 2 naming the option and what it takes."""
    if value in ("", None):
        return None
    try:
        n = cast(value)
    except (TypeError, ValueError):
        n = None
    if n is None or n != n or n in (float("inf"), float("-inf")) or n <= 0:
        raise Exit(f"error: {option} takes {what}, not {value!r}", code=2)
    return n


HW_TOOLS = "a positive number of points of loss (e.g. 2)"
HW_HOOKS = "a per cent of the median between 0 and 100 (e.g. 5)"
BUDGET = "a positive whole number of seconds (e.g. 600)"


def _with_tools(playbook, tool=None, bpftrace=None, load="", halfwidth="", budget="", latency=False):
    """The playbook, or one derived from it with the tool options (lab/run/tooloptions.py)."""
    from lab.run import tooloptions

    try:
        over = tooloptions.overrides(tool, bpftrace, load, number(halfwidth, "--halfwidth", HW_TOOLS),
                                     number(budget, "--budget", BUDGET, int))
        if latency:
            over["latency"] = True
        return tooloptions.derive(playbook, over)
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None


def _run(suites, kernel, playbook, report=False, accel="", max_hours=""):
    """Exit 0 only for a complete run; 1 when it is partial or failed; 128 + signal when a signal
    stopped it (130 SIGINT, 143 SIGTERM)."""
    try:
        store = bench.run(suites, kernel=kernel, playbook=playbook, report=report, accel=accel,
                          max_hours=max_hours or None)
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
    except interrupt.Interrupted as e:
        raise Exit(code=e.exit_code) from None
    status = store.manifest().get("status") if store is not None else "failed"
    if status != "complete":
        raise Exit(f"error: run {status} (see above); exit 1", code=1)


@task(help={"kernel": KHELP, "playbook": PHELP, "accel": AHELP, "max_hours": MHELP,
            "halfwidth": "per cent of the median: add open-path ABBA trials until the added cost's 95% interval is "
                         "within +-P% (lab/agent/hooks/precision.py)",
            "budget": "seconds per hook and variant for --halfwidth's trials (default 300)",
            "latency": "the open path's latency percentiles under each attach type instead (lab/agent/latency/; "
                       "--halfwidth: pairs until the p99 change is within +-P% of the baseline p99)"})
def hooks(c, kernel="6.12", playbook="default", accel="", halfwidth="", budget="", latency=False, max_hours=""):
    """Hook suite: added cost per event of each attach type on the open() path and beyond."""
    if halfwidth or budget or latency:
        from lab.run import tooloptions

        over = {k: v for k, v in (("halfwidth", number(halfwidth, "--halfwidth", HW_HOOKS)),
                                  ("budget_s", number(budget, "--budget", BUDGET, int)),
                                  ("latency", True if latency else None)) if v is not None}
        if over.get("halfwidth", 0) >= 100:
            raise Exit(f"error: --halfwidth takes {HW_HOOKS}, not {halfwidth!r}", code=2)
        try:
            playbook = tooloptions.derive(playbook, over, suite="hooks")
        except LabError as e:
            raise Exit(f"error: {e}", code=e.exit_code) from None
    _run(["hooks"], kernel, playbook, accel=accel, max_hours=max_hours)


@task(help={"kernel": KHELP, "playbook": PHELP, "accel": AHELP, "max_hours": MHELP})
def maps(c, kernel="6.12", playbook="default", accel="", max_hours=""):
    """Map suite: update/lookup cost per map type and memlock measured vs predicted."""
    _run(["maps"], kernel, playbook, accel=accel, max_hours=max_hours)


@task(help={"kernel": KHELP, "playbook": PHELP, "accel": AHELP, "max_hours": MHELP, **THELP, "latency": LHELP},
      iterable=["tool", "bpftrace"])
def tools(c, kernel="6.12", playbook="default", accel="", tool=None, bpftrace=None, load="", halfwidth="",
          budget="", latency=False, max_hours=""):
    """Tool suite: throughput a stress-ng load loses while each libbpf-tools tool (and yours) runs."""
    _run(["tools"], kernel, _with_tools(playbook, tool, bpftrace, load, halfwidth, budget, latency), accel=accel,
         max_hours=max_hours)


@task(name="all", help={"kernel": KHELP, "playbook": PHELP, "accel": AHELP, "max_hours": MHELP, **THELP,
                        "report": "write the run's report (--no-report: rows only)"}, iterable=["tool", "bpftrace"])
def all_(c, kernel="6.12", playbook="default", report=True, accel="", tool=None, bpftrace=None, load="",
         halfwidth="", budget="", max_hours=""):
    """Every suite on one kernel, then the report for that run (results/<run>/report.html)."""
    _run(None, kernel, _with_tools(playbook, tool, bpftrace, load, halfwidth, budget), report=report, accel=accel,
         max_hours=max_hours)


@task(name="run", positional=["playbook"],
      help={"playbook": "a playbook with a matrix: kernels: [...] and/or targets: [host, ssh://...] "
                        "(e.g. playbooks/smoke.yaml, or its name: smoke)",
            "jobs": "guests at once (default: as many as the host's cores and memory allow)",
            "accel": AHELP, "max_hours": MHELP, **THELP,
            "report": "write the report across the matrix (--no-report: runs only)"}, iterable=["tool", "bpftrace"])
def run_(c, playbook, jobs=0, report=True, accel="", tool=None, bpftrace=None, load="", halfwidth="", budget="",
         max_hours=""):
    """A playbook's kernel matrix: guests in parallel, then the host; one report across them.

    Every kernel of `kernels:` in a lab guest, every target of `targets:`; the report and matrix.json
    go to results/matrix-<id>/. Exit 0 only if every run completed."""
    from lab.run import matrix

    playbook = _with_tools(playbook, tool, bpftrace, load, halfwidth, budget)
    try:
        if int(jobs) < 0:
            raise Exit(f"error: --jobs takes a whole number of guests >= 0 (0: as many as fit), not {jobs}", code=2)
        code = matrix.run_playbook(playbook, jobs=int(jobs) or None, report=report, accel=accel,
                                   max_hours=max_hours or None)
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
    if code:
        raise Exit(code=code)


@task(help={"kernel": "kernel alias", "reps": "alternated repetitions"})
def boot(c, kernel="6.12", reps=5):
    """Benchmark lab.up boot-to-SSH against bare `vng --run ... --exec true` (prints the ratio)."""
    import sys

    c.run(f"{sys.executable} benchmarks/boot.py --kernel {kernel} --reps {int(reps)}", pty=False)


@task(help={"hook": "hook to measure on this machine's kernel (default tracepoint)",
            "trials": "comma-separated trial counts (default 5,10,20,40)"})
def repeat(c, hook="tracepoint", trials="5,10,20,40"):
    """Benchmark: spread (CI width / median) of a host hook row and how it shrinks with more trials."""
    import sys

    c.run(f"{sys.executable} benchmarks/repeatability.py --hook {hook} --trials {trials}", pty=False)


@task(help={"playbook": "matrix playbook to time (default: smoke)"})
def matrix(c, playbook="smoke"):
    """Benchmark: a matrix's wall time with guests in parallel vs one after another (prints the ratio)."""
    import sys

    c.run(f"{sys.executable} benchmarks/matrix_speedup.py --playbook {playbook}", pty=False)


@task(help={"rounds": "rounds of (kernel bench, lab rows) back to back (default 3)",
            "duration": "kernel bench seconds per benchmark after its 1 s warm-up (default 5)",
            "variants": "lab program variants, comma-separated: empty, count (default empty)"})
def reference(c, rounds=3, duration=5, variants="empty"):
    """Benchmark: the kernel's own selftests/bpf trigger bench (built from Debian's linux-source) beside
    the lab's kernel_batch raw_tp / tracepoint rows on this machine; prints both and their ratio."""
    import sys

    c.run(f"{sys.executable} benchmarks/kernel_bench.py --rounds {int(rounds)} --duration {int(duration)}"
          f" --variants {variants}", pty=False)


@task(help={"kernel": "kernel alias", "playbook": PHELP, "suite": "hooks, maps or tools (default hooks)",
            "reps": "alternated runs per mode (default 1)"})
def icount(c, kernel="6.12", playbook="default", suite="hooks", reps=1):
    """Benchmark: wall time of one suite under plain TCG and under icount (prints the ratio)."""
    import sys

    c.run(f"{sys.executable} benchmarks/icount_cost.py --kernel {kernel} --playbook {playbook} --suite {suite} "
          f"--reps {int(reps)}", pty=False)


@task(help={"kernel": "kernel alias (default 6.12)", "reps": "boots with the event-count plugin (default 1)",
            "cost": "also run without the plugin, alternated, and print the wall-time ratio",
            "host": "a host run directory with kernel_batch rows (ns) to compare orders with"})
def events(c, kernel="6.12", reps=1, cost=False, host=""):
    """Benchmark: instructions and the estimated cost (model, emulated) against the published table."""
    import shlex
    import sys

    extra = (" --cost" if cost else "") + (f" --host {shlex.quote(host)}" if host else "")
    c.run(f"{sys.executable} benchmarks/event_model.py --kernel {shlex.quote(kernel)} --reps {int(reps)}{extra}",
          pty=False)
