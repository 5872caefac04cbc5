"""The hook suite's latency mode (`suites.hooks.latency: true`, `./labctl bench.hooks --latency`): the
open path's latency per call under each open-path attach type (workload "open", hookbench openlat:
the C loop times every openat+close; ABBA trials, A = no program, B = the program attached), a row
per hook and variant with the arms' percentiles and their changes (abba.py). The program must run
once per call in every hooked arm and never in a baseline arm (else "invalid"); a hook the kernel
refuses gives an "unsupported" row with its text. Rounds of `latency_trials` pairs (one helper run
each) until the stop rule of abba.py. Parameters: latency, latency_trials (6), latency_ops (20000
calls per arm and trial), with the suite's hooks, variants, path, halfwidth, budget_s, max_trials.
Standard library only.
"""

import subprocess

from ..common import TCG_NOTE
from ..hooks.hookbench import Failed, Refused
from . import abba, workloads


def rows(suite, open_hooks):
    """The latency rows of every selected open-path hook and variant."""
    p = suite.ctx.param
    pairs_wanted = int(p("latency_trials", abba.DEFAULT_PAIRS))
    ops = int(p("latency_ops", workloads.OPEN_OPS))
    target = p("halfwidth", None)
    for hook in suite.hooks:
        if hook not in open_hooks:
            continue
        for variant in suite.variants:
            if variant in ("count",):
                continue
            yield one(suite, hook, variant, open_hooks[hook], pairs_wanted, ops, target)


def one(suite, hook, variant, spec, pairs_wanted, ops, target):
    prefix, attach_point = spec
    prog = "%s_%s" % (prefix, variant)
    label = "openat+close %s x %d (hookbench openlat)" % (suite.path, ops)
    base = dict(hook=hook, attach_point=attach_point, variant=variant, program=prog, per=workloads.PER["open"],
                method="latency_abba", workload="open", load=label, coordinated_omission=workloads.CO["open"])

    def out(status, reason, **f):
        if suite.ctx.accelerator == "tcg":
            f.update(note=TCG_NOTE, emulated=True)
        return suite.ctx.row(status=status, reason=reason, **f)

    if suite.ctx.accelerator == "icount":
        return out("unsupported", abba.ICOUNT_REASON, **base)
    suite.ctx.log("%s %s latency: %s x %d calls per arm" % (
        hook, variant, "pairs until the p99 change is within +-%g%%" % target if target is not None
        else "%d ABBA pairs" % pairs_wanted, ops))
    counts = {"events": 0, "triggers": 0, "base_events": 0}

    def next_pairs(done):
        got = []
        for t in workloads.open_latencies(suite.helper, suite.ctx.path("hook_open.bpf.o"), prog, pairs_wanted, ops):
            counts["events"] += t["events"]
            counts["triggers"] += len(t["hook"])
            counts["base_events"] += t["base_events"]
            got.append(abba.pair_of(t["order"], t["base"], t["hook"]))
        return got

    try:
        pairs, stop = abba.collect(next_pairs, pairs_wanted, target, suite.budget_s, suite.max_trials, suite.ctx.log)
    except Refused as e:
        return out("unsupported", str(e), **base)
    except (Failed, subprocess.TimeoutExpired) as e:
        return out("error", str(e), **base)
    fields, (status, reason) = abba.row_fields(pairs, "open", label, workloads.PER["open"], workloads.CO["open"])
    fields.update(base, events=counts["events"], triggers=counts["triggers"], ops_per_trial=ops, **stop)
    if status == "ok" and counts["events"] != counts["triggers"]:
        status, reason = "invalid", "program counted %d events for %d calls" % (counts["events"], counts["triggers"])
    if status == "ok" and counts["base_events"]:
        status, reason = "invalid", ("the program counted %d events during baseline arms: it was not detached"
                                     % counts["base_events"])
    return out(status, reason, **fields)
