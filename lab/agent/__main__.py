"""Entry point: python3 -m agent --suite NAME ... (in the guest) or python3 -m lab.agent (host).

Rows go to stdout, one JSON object per line, flushed as each is made, so the host keeps every
finished row even if the guest dies midway. Progress and diagnostics go to stderr.

SIGTERM, SIGINT and SIGHUP stop the suite: every clean-up on the way out runs (helpers and tools
stopped, network namespaces and cgroups removed, scratch disk unmounted), an error row says what
stopped it, anything left in the agent's process group is killed, and it exits 128 + signal.
`--cleanup PID` removes what a killed agent (SIGKILL: no clean-up possible) left behind.
"""

import argparse
import importlib
import json
import os
import sys
import traceback

from . import schema
from .common import Context, Interrupted, cleanup_after, install_signal_handlers, kill_group_members

SUITES = tuple(schema.SUITES)  # the registry of suites: lab/agent/schema.py


def main(argv=None):
    ap = argparse.ArgumentParser(prog="agent", description=__doc__)
    ap.add_argument("--suite", choices=SUITES)
    ap.add_argument("--run-id", default="adhoc")
    ap.add_argument("--accelerator", default="host", choices=schema.ACCELERATORS)
    ap.add_argument("--bpf-dir", help="directory with the host-built BPF objects and helpers")
    ap.add_argument("--params", default="{}", help="suite parameters as a JSON object")
    ap.add_argument("--out", help="also append rows to this file")
    ap.add_argument("--pidfile", help="holds this agent's pid (written by the caller); removed at exit")
    ap.add_argument("--cleanup", type=int, metavar="PID", help="remove what a killed agent PID left behind")
    args = ap.parse_args(argv)
    if args.cleanup:
        for what in cleanup_after(args.cleanup):
            sys.stderr.write("agent %d left %s: removed\n" % (args.cleanup, what))
        return 0
    if not args.suite or not args.bpf_dir:
        ap.error("--suite and --bpf-dir are required")

    install_signal_handlers()
    try:  # children must not hold the caller's stdin (an SSH channel stays open while they do)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    except OSError:
        pass
    ctx = Context(args.suite, args.run_id, args.accelerator, args.bpf_dir, json.loads(args.params))
    out = open(args.out, "a") if args.out else None

    def emit(row):
        problems = schema.validate(row)
        if problems:  # a bug in a suite: keep the row, but say so loudly
            ctx.log("row fails schema: %s: %s" % ("; ".join(problems), row))
        line = json.dumps(row, sort_keys=True) + "\n"
        for f in (sys.stdout, out):
            if f:
                f.write(line)  # one write of the whole line
                f.flush()

    rc = 0
    rows = None
    try:
        suite = importlib.import_module(f".{args.suite}.suite", __package__)
        rows = suite.run(ctx)
        for row in rows:
            emit(row)
    except Interrupted as e:  # the host (or a user) stopped us: clean up, say so, keep what was measured
        rc = 128 + e.signum
        if rows is not None:
            try:
                rows.close()  # a suite suspended at a yield runs its `finally` clean-ups now
            except Exception:  # noqa: BLE001 - best effort: the group kill below still runs
                ctx.log(traceback.format_exc())
        try:
            emit(ctx.row(status="error", reason="interrupted by signal %d: the suite was stopped" % e.signum))
        except OSError:
            pass  # the host is gone
    except Exception as e:  # keep what was measured, record what broke
        rc = 1
        tb = traceback.format_exc()
        ctx.log(tb)
        try:
            emit(ctx.row(status="error", reason="%s: %s" % (type(e).__name__, e)))
        except OSError:
            pass
    finally:
        if out:
            out.close()
        if os.getpgrp() == os.getpid():  # we lead our group: nothing we started outlives us
            kill_group_members(os.getpid())
        if args.pidfile:
            try:
                with open(args.pidfile) as f:
                    mine = f.read().strip() == str(os.getpid())
                if mine:
                    os.unlink(args.pidfile)
            except OSError:
                pass
    return rc


if __name__ == "__main__":
    sys.exit(main())
