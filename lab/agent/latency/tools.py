"""The tool suite's latency mode (`suites.tools.latency: true`, `./labctl bench.tools --latency`): per
tool and workload (workloads.py), ABBA pairs of one trial of the workload alone (A) and one with the
tool started before it and stopped after it (B); a row per tool and workload with the arms'
percentiles and their changes (abba.py). The kernel's BPF statistics are on for the whole measurement,
both arms (as in the throughput trials), so the tool's programs' runs during its B trials are counted:
none is not a measurement ("invalid"). A tool the kernel refuses gives an "unsupported" row; a
workload whose program is not installed gives "unsupported" rows with the package to install.
Parameters (playbook `suites.tools`): latency, latency_workloads (["rr", "timer", "disk", "open"]),
latency_trials (pairs, 6), latency_seconds (per trial, 3), latency_ops (open: calls per trial, 20000),
latency_rates (rr / timer / disk requests per second); halfwidth / budget_s / max_trials as in
tools/precision.py, on the p99 change (abba.py). Standard library only.
"""

import os

from ..common import TCG_NOTE
from ..tools import cost as toolcost
from ..tools import user as usertool
from ..tools.procs import Refused
from . import abba, workloads
from .workloads import Missing

WORKLOADS = workloads.NAMES


class ToolLatency:
    def __init__(self, suite):
        self.suite = suite
        p = suite.ctx.param
        self.workloads = list(p("latency_workloads", list(WORKLOADS)))
        self.pairs = int(p("latency_trials", abba.DEFAULT_PAIRS))
        self.seconds = int(p("latency_seconds", workloads.SECONDS))
        self.ops = int(p("latency_ops", workloads.OPEN_OPS))
        self.rates = dict(p("latency_rates", {}) or {})
        self.target = p("halfwidth", None)
        self.budget = int(p("budget_s", 600))
        self.max_pairs = int(p("max_trials", 200))

    def out(self, status="ok", reason="", **f):
        if self.suite.ctx.accelerator == "tcg":
            f.update(note=TCG_NOTE, emulated=True)
        return self.suite.ctx.row(status=status, reason=reason, disk=self.suite.disk, **f)

    def workload(self, name):
        ctx = self.suite.ctx
        return workloads.Workload(name, self.suite.workdir, self.seconds, self.rates.get(name), self.ops,
                                  ctx.path("hookbench"), ctx.path("hook_open.bpf.o"))

    def rows(self, name, resource):
        """Every workload's row for one tool."""
        for wl in self.workloads:
            yield self.row(name, resource, wl)

    def row(self, name, resource, wl):
        s = self.suite
        base = dict(tool=name, resource=resource, workload=wl, per=workloads.PER[wl], method="latency_abba",
                    coordinated_omission=workloads.CO[wl])
        label = workloads.label(wl, self.seconds, self.rates.get(wl) or workloads.RATES.get(wl, 0), self.ops)
        if s.ctx.accelerator == "icount":
            return self.out("unsupported", abba.ICOUNT_REASON, load=label, **base)
        try:
            w = self.workload(wl)
        except Missing as e:
            return self.out("unsupported", str(e), load=label, **base)
        s.ctx.log("%s latency under %s: %s" % (name, wl, "pairs until the p99 change is within +-%g%% (budget %d s)"
                                                % (self.target, self.budget) if self.target is not None
                                                else "%d ABBA pairs" % self.pairs))
        try:
            fd = toolcost.bpf_stats_fd()
        except OSError as e:
            return self.out("unsupported", "cannot count the tool's program runs: %s" % e, load=label, **base)
        counted = {"events": 0, "programs": 0}
        try:
            w.start()
            pairs, stop = abba.collect(lambda done: [self.pair(w, name, done, counted)], self.pairs, self.target,
                                       self.budget, self.max_pairs, s.ctx.log)
        except Refused as e:
            return self.out("unsupported", str(e), load=label, **base)
        except Exception as e:  # noqa: BLE001 - one tool's failure is its row; the suite goes on
            return self.out("error", "%s: %s" % (type(e).__name__, e), load=label, **base)
        finally:
            w.stop()
            os.close(fd)
        fields, (status, reason) = abba.row_fields(pairs, wl, label, workloads.PER[wl], workloads.CO[wl])
        if status == "ok" and counted["events"] == 0:
            status, reason = "invalid", ("none of the tool's %d programs ran during its %d trials under %s"
                                         % (counted["programs"], len(pairs), wl))
        fields.update(base, events=counted["events"], programs=counted["programs"], **stop)
        return self.out(status, reason, **fields)

    def pair(self, w, name, done, counted):
        order = "AB" if done % 2 == 0 else "BA"
        got = {}
        for side in order:
            got[side] = w.trial() if side == "A" else self.with_tool(w, name, counted)
        return abba.pair_of(order, got["A"], got["B"])

    def with_tool(self, w, name, counted):
        """One trial with the tool attached: its programs' runs meanwhile are added to counted."""
        s = self.suite
        tc = toolcost
        before = set(tc.prog_ids())
        proc = s.start_tool(name)
        try:
            held = usertool.held(proc.pid) if name in s.user_tools else tc.held_prog_ids(proc.pid)
            ids = [i for i in tc.prog_ids() if i not in before and (not held or i in held)]
            p0 = tc.progs(ids)
            lat = w.trial()
            p1 = tc.progs(ids)
        finally:
            s.stop_tool(proc)
        counted["programs"] = max(counted["programs"], len(ids))
        counted["events"] += sum(p1[i]["run_cnt"] - p0.get(i, {}).get("run_cnt", 0) for i in p1)
        return lat
