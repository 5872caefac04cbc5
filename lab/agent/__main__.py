"""Entry point: python3 -m agent --suite NAME ... (in the guest) or python3 -m lab.agent (host).

Rows go to stdout, one JSON object per line, flushed as each is made, so the host keeps every
finished row even if the guest dies midway. Progress and diagnostics go to stderr.
"""

import argparse
import importlib
import json
import sys
import traceback

from . import schema
from .common import Context

SUITES = ("hooks", "maps", "tools")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="agent", description=__doc__)
    ap.add_argument("--suite", required=True, choices=SUITES)
    ap.add_argument("--run-id", default="adhoc")
    ap.add_argument("--accelerator", default="host", choices=schema.ACCELERATORS)
    ap.add_argument("--bpf-dir", required=True, help="directory with the host-built BPF objects and helpers")
    ap.add_argument("--params", default="{}", help="suite parameters as a JSON object")
    ap.add_argument("--out", help="also append rows to this file")
    args = ap.parse_args(argv)

    ctx = Context(args.suite, args.run_id, args.accelerator, args.bpf_dir, json.loads(args.params))
    out = open(args.out, "a") if args.out else None

    def emit(row):
        problems = schema.validate(row)
        if problems:  # a bug in a suite: keep the row, but say so loudly
            ctx.log("row fails schema: %s: %s" % ("; ".join(problems), row))
        line = json.dumps(row, sort_keys=True)
        for f in (sys.stdout, out):
            if f:
                f.write(line + "\n")
                f.flush()

    rc = 0
    try:
        suite = importlib.import_module("." + args.suite, __package__)
        for row in suite.run(ctx):
            emit(row)
    except Exception as e:  # keep what was measured, record what broke
        rc = 1
        tb = traceback.format_exc()
        ctx.log(tb)
        emit(ctx.row(status="error", reason="%s: %s" % (type(e).__name__, e)))
    finally:
        if out:
            out.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
