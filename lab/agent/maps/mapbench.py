"""The map suite's C helper (bpf/helpers/mapbench/): running it, and turning its records into row
fields (pure functions, unit-tested). Standard library only."""

import json
import subprocess

from ..common import timing_fields


class Refused(Exception):
    """The kernel refused (helper exit 2): an unsupported row."""


class Failed(Exception):
    """Anything else went wrong: an error row."""


def run_mapbench(helper, mode, args, timeout=1800):
    """The helper's record (its first JSON line; an "order" line, if any, becomes its "order" field)."""
    proc = subprocess.run([helper, mode] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)
    text = " | ".join(ln.strip() for ln in proc.stderr.splitlines() if ln.strip())[-1500:]
    if proc.returncode == 2:
        raise Refused(text or "refused")
    if proc.returncode != 0:
        raise Failed("mapbench %s exit %d: %s" % (mode, proc.returncode, text or "no message"))
    recs = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    order = [r["order"] for r in recs if r.get("mode") == "order"]
    recs = [r for r in recs if r.get("mode") != "order"]
    if not recs:
        raise Failed("mapbench %s printed no record" % mode)
    if order:
        recs[0]["order"] = order[0]
    return recs[0]


def timed_fields(rec, method, loop_ns=None):
    """Row fields of a timed record from `mapbench kern` or `mapbench user`."""
    f = timing_fields(method, rec["ns_per_op"], rec["ops_per_trial"])
    f.update(events=rec["events"], triggers=rec["triggers"], live_entries=rec.get("live_entries"))
    if "threads" in rec:
        f["threads"] = rec["threads"]
        f["agg_ns_per_op"] = timing_fields(method, rec["agg_ns_per_op"], rec["ops_per_trial"])["ns_median"]
        f["wall_samples"] = [round(x, 3) for x in rec["wall_ns_per_op"]]
    if loop_ns is not None and f["ns_median"] is not None:
        f["loop_ns"] = loop_ns
        f["map_ns"] = f["ns_median"] - loop_ns
    return f


def validity(rec):
    """(status, reason): every issued operation must have succeeded (update) / found (lookup)."""
    if rec["events"] != rec["triggers"]:
        return "invalid", "events %d != triggers %d: the program did not do every map operation" % (
            rec["events"], rec["triggers"])
    return "ok", ""
