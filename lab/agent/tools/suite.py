"""Tool suite: what running an observability tool costs a loaded system (the talk's Part 1).

The talk loaded six tools from BCC's collection, covering CPU, memory, IO and network, on a system
kept busy by stress-ng, and measured what they cost. Here the tools are the CO-RE builds of those
BCC tools from Debian's libbpf-tools package (no compiler in the guest), the load is one stress-ng
run with a CPU, a memory, a disk and a network stressor, and the cost is the load's throughput
lost while the tool runs.

Per tool, in ABBA order (A = load alone, B = load with the tool attached, so drift cancels):
each trial runs stress-ng for `seconds` and reads every stressor's bogo-ops per second from its
YAML report; the trial's overhead is the mean over stressors of the throughput each lost, in %.
Before the timed trials, a proof phase runs the tool under the same load with the kernel's BPF
statistics on (BPF_ENABLE_STATS, undone when its fd closes) and sums run_cnt over the programs
the tool loaded: a tool whose programs never ran is not a measurement (status "invalid").
A tool the kernel refuses (its loader exits with libbpf's error text) gives an "unsupported" row
with that text; the suite goes on.

Parameters (playbook `suites.tools`, all optional):
  tools    (["runqlat", "cpudist", "cachestat", "biolatency", "vfsstat", "tcplife"])
  trials   (5 ABBA pairs), seconds (3 s of load per trial), proof_seconds (2)
  loads    (tool -> stress-ng stressors, one instance each; default WATCHED: the load that makes
            each tool's hooks fire), load (one list for every tool, instead of WATCHED)
  combined (true: after the tools one by one, every tool that ran at once, row tool "all",
            method "combined_abba", load the union of theirs)
  tool_dir ("/usr/sbin": where the libbpf-tools binaries are)
  tool_build ("auto": the packaged build, else a newer one the kernel accepts; tools/builds.py)
  latency  (false: true measures latency percentiles under each tool instead of throughput:
            lab/agent/latency/tools.py, with latency_workloads, latency_trials, latency_seconds,
            latency_ops, latency_rates)
  map_count (true: after the proof run, a counting phase of count_seconds (proof_seconds) under the
            same load with the map-operation counter attached, tools/mapaccess.py; row field map_count)

The disk stressor writes to the lab's scratch disk when the machine has one (lab guests do: their
root is 9p and /tmp lives in memory, so biolatency would see no block I/O), else to a temporary
directory; the row's `disk` says which.

Rows (schema.SUITES["tools"]): tool, load, method "throughput_abba", trials, baseline_ops and
tool_ops (median bogo-ops/s summed over stressors), overhead_pct with overhead_ci_low/high
(median and bootstrap 95% CI over trials), overhead_samples (per trial); overhead_cpu_pct with
overhead_cpu_ci_low/high and overhead_cpu_samples: the same loss in bogo-ops per second of the
stressors' own CPU time (usr+sys), which other tasks preempting the load do not change (the tools'
cpu_abba: on a shared machine its interval is the narrower; it leaves out the tool process's
competition for the CPUs, measured as the user-space part instead); per_stressor
(median loss % per stressor), events (program runs in the proof phase), programs (how many).
Beside the total, where it comes from (tools/cost.py): per trial, the throughput-derived CPU cost and
the parts measured from counters (program run time, the tool's own CPU), the remainder unexplained;
the one-time load cost (exec to attached, verified_insns) and the tool's maps.
"""

import os
import shutil
import subprocess
import tempfile
import time

from ..common import TCG_NOTE, check_params, median_ci
from ..scratch import SCRATCH_LABEL, SCRATCH_MOUNT, ext4_label, mount_scratch  # noqa: F401 (vm.py, tests)
from . import attach as toolattach
from . import builds as toolbuild
from . import cost as toolcost
from . import mapaccess, precision, procs
from . import user as usertool
from . import verifier as toolverif
from ..latency import abba as latabba
from ..latency import tools as latency
from .load import free_port, loss_pct, parse_metrics, per_stressor  # noqa: F401 (tests)
from .procs import Refused, tracefs_missing  # noqa: F401 (mapaccess, tests)

from .registry import PORTED, STRESSOR_OPTS, STRESSORS, TOOLS, WATCHED  # noqa: F401 (the suite's, tests')

CPU_RATE = "bogo-ops-per-second-usr-sys-time"  # the stressors' work per second of their own CPU time

PARAMS = ("tools", "trials", "seconds", "proof_seconds", "load", "loads", "combined", "tool_dir", "tool_build",
          "map_count", "count_seconds", "user_tools") + precision.PARAMS + latabba.PARAMS


def check(params):
    """Problems with the playbook's tools parameters (checked on the host before anything boots)."""
    problems = check_params(params, PARAMS, {"tools": tuple(TOOLS), "load": STRESSORS},
                            ints=("trials", "seconds", "proof_seconds", "count_seconds"))
    problems += [p for p in [toolbuild.check(params.get("tool_build"))] if p]
    problems += usertool.check(params.get("user_tools"), STRESSORS) + precision.check(params)
    problems += latabba.check(params, latency.WORKLOADS)
    users = params.get("user_tools") if isinstance(params.get("user_tools"), dict) else {}
    clash = sorted(set(users) & set(TOOLS))
    if clash:
        problems.append("user_tools: %s already name(s) one of the six tools" % ", ".join(clash))
    loads = params.get("loads", {})
    if not isinstance(loads, dict):
        return problems + ["loads must be a mapping tool -> [stressors]"]
    for tool, load in loads.items():
        if tool not in TOOLS and tool not in users:
            problems.append("loads: %r is not one of %s" % (tool, ", ".join(list(TOOLS) + list(users))))
        if not isinstance(load, list) or not load or any(x not in STRESSORS for x in load):
            problems.append("loads: %s must be a non-empty list of %s" % (tool, ", ".join(STRESSORS)))
    for flag in ("combined", "map_count"):
        if not isinstance(params.get(flag, True), bool):
            problems.append("%s must be true or false" % flag)
    return problems


# ---- the suite ----

def load_label(load, seconds):
    return "stress-ng " + " ".join("--%s 1" % s for s in load) + " (%d s)" % seconds


class ToolSuite:
    def __init__(self, ctx):
        self.ctx = ctx
        p = ctx.param
        self.tools = list(p("tools", list(TOOLS)))
        self.trials = int(p("trials", 5))
        self.seconds = int(p("seconds", 3))
        self.proof_seconds = int(p("proof_seconds", 2))
        self.load = p("load", None)  # one load for every tool; default: the load each tool watches
        self.loads = dict(p("loads", {}) or {})
        self.combined = bool(p("combined", True))
        self.map_count = bool(p("map_count", True))
        self.count_seconds = int(p("count_seconds", self.proof_seconds))
        self.tool_dir = str(p("tool_dir", "/usr/sbin"))
        self.builds = toolbuild.Chooser(p("tool_build", "auto"), self.tool_dir, ctx.bpf_dir)
        self.user_tools = {n: usertool.normalize(s) for n, s in (p("user_tools", {}) or {}).items()}
        self.precision = precision.Precision(p)
        self.stress = shutil.which("stress-ng") or "/usr/bin/stress-ng"
        self.workdir = None  # made by run(), removed when it ends
        self.disk = None  # where the disk stressor writes (set by run())

    def load_of(self, name):
        if self.user_tools.get(name, {}).get("load"):
            return list(self.user_tools[name]["load"])
        if name in self.loads:
            return list(self.loads[name])
        return list(self.load) if self.load else list(WATCHED.get(name, ["cpu", "vm", "hdd", "sock"]))

    def row(self, load, status="ok", reason="", **f):
        if self.ctx.accelerator == "tcg":
            f["note"] = TCG_NOTE
            f["emulated"] = True
        return self.ctx.row(status=status, reason=reason, load=load_label(load, self.seconds), disk=self.disk, **f)

    # -- processes we start, stopped by pid --
    def stress_run(self, seconds, load):
        """One stress-ng run: (its stressors' bogo-ops/s (real time), the CPU seconds per second
        its process tree used (getrusage of reaped children), its wall seconds, its stressors'
        bogo-ops per second of their own CPU time)."""
        report = os.path.join(self.workdir, "stress.yaml")
        cmd = [self.stress, "--timeout", "%ds" % seconds, "--metrics-brief", "--yaml", report, "--temp-path",
               self.workdir]
        for s in load:
            cmd += ["--" + s, "1"] + STRESSOR_OPTS.get(s, [])
            if s in PORTED:  # a free port of ours: another stress-ng on the machine may hold the default
                cmd += ["--%s-port" % s, str(free_port())]
        cpu0, t0 = toolcost.children_cpu(), time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=seconds * 4 + 60)
        wall = time.monotonic() - t0
        cpu = toolcost.children_cpu() - cpu0
        if proc.returncode != 0 or not os.path.exists(report):
            raise RuntimeError("stress-ng exit %d: %s" % (proc.returncode, proc.stderr.strip()[-500:]))
        with open(report) as f:
            text = f.read()
        os.unlink(report)
        return parse_metrics(text), cpu / wall, wall, parse_metrics(text, CPU_RATE)

    def start_tool(self, name, env=None):
        """Start a tool with the build toolbuild.Chooser picks (the first the kernel accepts); a user
        tool (tools/user.py) as its spec says."""
        if name in self.user_tools:
            spec = self.user_tools[name]
            try:
                return self.start_argv(name, usertool.argv(name, spec, self.ctx.bpf_dir, Refused), env, user=True)
            except usertool.Exited as e:  # bpftrace's own text says whether the kernel refused it
                if usertool.kind(spec) == "bpftrace" and usertool.refusal(str(e)):
                    raise Refused("bpftrace refused: %s" % e) from None
                raise
        return self.builds.start(name, lambda argv: self.start_argv(name, argv, env), Refused)

    def start_argv(self, name, argv, env=None, user=False):
        return procs.start(self.workdir, name, argv, env, user)

    stop_tool = staticmethod(procs.stop)
    tool_cpu = staticmethod(procs.tool_cpu)

    # -- one tool, or several at once --
    def tool_side(self, names, seconds, load, verifier=False):
        """One run of the load with the tools attached (started one after the other), with their
        counters around it. A program is a tool's if it appeared while that tool started and the
        tool's process holds it (fdinfo), so programs other processes load meanwhile are not.
        verifier: start them with the verifier-statistics shim (tools/verifier.py; the proof run)."""
        procs, owner, verif = [], {}, {}
        shim = self.ctx.path(toolverif.SHIM)
        try:
            for name in names:
                before = set(toolcost.prog_ids())
                out = os.path.join(self.workdir, "verifier-%s.tsv" % name)
                if os.path.exists(out):
                    os.unlink(out)
                proc = self.start_tool(name, toolverif.env(shim, out) if verifier else None)
                verif[name] = toolverif.read(out) if verifier else []
                procs.append(proc)
                held = usertool.held(proc.pid) if name in self.user_tools else toolcost.held_prog_ids(proc.pid)
                for i in toolcost.prog_ids():
                    if i not in before and (not held or i in held):
                        owner[i] = name
            p0 = toolcost.progs(list(owner))
            attach = toolattach.attach_of(p0)
            c0 = [self.tool_cpu(p) for p in procs]
            metrics, load_cpu, wall, cpu_metrics = self.stress_run(seconds, load)
            c1 = [self.tool_cpu(p) for p in procs]
            p1 = toolcost.progs(list(owner))
            maps = toolcost.tool_maps(p1.values())
        finally:
            for p in procs:
                self.stop_tool(p)
        key = (lambda i, n: n) if len(names) == 1 else (lambda i, n: "%s:%s" % (owner[i], n))
        progs = toolcost.program_rows(p0, p1, attach, key)
        vf = {}
        if verifier:
            per = [toolverif.fields(verif[n], [p["name"] for i, p in p1.items() if owner[i] == n],
                                    os.path.exists(shim)) for n in names]
            vf = per[0] if len(per) == 1 else dict(
                verifier_us=None if None in [f["verifier_us"] for f in per] else sum(f["verifier_us"] for f in per),
                verifier_detail={n: f.get("verifier_detail") for n, f in zip(names, per)},
                verifier_why="; ".join(sorted({f["verifier_why"] for f in per})))
        return dict(metrics=metrics, cpu_metrics=cpu_metrics, load_cpu=load_cpu, wall=wall,
                    user_cpu=sum(b[0] - a[0] for a, b in zip(c0, c1)),
                    switches=sum(b[1] - a[1] for a, b in zip(c0, c1)),
                    exec_ns=sum(p["run_time_ns"] for p in progs.values()),
                    events=sum(p["run_cnt"] for p in progs.values()), progs=progs, maps=maps,
                    load_ms=sum(p.lab_load_ms for p in procs), programs=len(owner), verifier=vf)

    def map_fields(self, names, load):
        """map_count (the counting phase, tools/mapaccess.py), or why map access stays inside exec."""
        if not self.map_count:
            return {}, mapaccess.OFF
        try:
            return {"map_count": mapaccess.count_phase(self, names, load, self.count_seconds)}, None
        except mapaccess.Refused as e:
            return {}, mapaccess.REFUSED % e

    def measure(self, names, load, **base):
        base.setdefault("method", "throughput_abba")
        try:
            row = self.measure_tool(names, load, base)
        except Refused as e:
            row = self.row(load, "unsupported", str(e), **base)
        except usertool.Exited as e:
            row = self.row(load, "error", str(e), **base)
        except Exception as e:  # noqa: BLE001 - one tool's failure is its row; the suite goes on
            row = self.row(load, "error", "%s: %s" % (type(e).__name__, e), **base)
        if len(names) == 1 and names[0] in self.user_tools:
            row.update(tool_build=usertool.label(self.user_tools[names[0]]), tool_build_refused=[],
                       user_tool=usertool.kind(self.user_tools[names[0]]))
        elif len(names) == 1:
            row.update(self.builds.fields(names[0]))
        else:
            row["tool_builds"] = {n: self.builds.fields(n).get("tool_build") for n in names}
        return row

    def measure_tool(self, names, load, base):
        """The kernel's BPF statistics are on for the whole measurement (proof and both sides of
        every trial), so the trials' program run times are those of the throughput they lost."""
        try:
            fd = toolcost.bpf_stats_fd()
        except OSError as e:
            raise Refused("cannot count the tool's program runs: %s" % e) from None
        try:
            return self.measure_on(names, load, base)
        finally:
            os.close(fd)

    def measure_on(self, names, load, base):
        proof = self.tool_side(names, self.proof_seconds, load, verifier=True)
        counted, why = self.map_fields(names, load)
        pairs, sides, loads, stop_fields = self.precision.pairs(self, names, load)
        loads.insert(0, proof["load_ms"])
        losses = [loss_pct(b, t) for b, t in pairs]
        med, lo, hi = median_ci([x for x in losses if x is not None])
        cpu_per_trial = [loss_pct(a[3], b["cpu_metrics"]) for a, b in sides]
        cpu_losses = [x for x in cpu_per_trial if x is not None]
        cmed, clo, chi = median_ci(cpu_losses)
        parts = toolcost.sources_fields(losses, sides, loads, proof, cpu_per_trial)
        status, reason = ("ok", "") if proof["events"] > 0 else (
            "invalid", "none of the %d programs ran during the %d s proof run under load"
            % (proof["programs"], self.proof_seconds))
        return self.row(load, status, reason, trials=len(pairs), ops_per_trial=self.seconds,
                        baseline_ops=median_ci([sum(b.values()) for b, _ in pairs])[0],
                        tool_ops=median_ci([sum(t.values()) for _, t in pairs])[0],
                        overhead_pct=med, overhead_ci_low=lo, overhead_ci_high=hi,
                        overhead_samples=[round(x, 3) for x in losses if x is not None],
                        overhead_cpu_pct=cmed, overhead_cpu_ci_low=clo, overhead_cpu_ci_high=chi,
                        overhead_cpu_samples=[round(x, 3) for x in cpu_losses],
                        per_stressor=per_stressor(pairs), events=proof["events"], programs=proof["programs"],
                        **mapaccess.with_not_separable(parts, why),
                        **stop_fields, **counted, **base)

    def run(self):
        mount, dev = mount_scratch(load_driver=self.ctx.accelerator != "host")  # a lab guest (any accelerator)
        self.workdir = tempfile.mkdtemp(prefix="lab-tools-%d-" % os.getpid(), dir=mount)
        self.disk = ("ext4 on the lab's scratch disk %s" % dev if mount else
                     "a temporary directory on %s" % os.path.dirname(self.workdir))
        try:
            if self.ctx.param("latency", False):  # latency percentiles instead of throughput (latency/tools.py)
                lat = latency.ToolLatency(self)
                for name in self.tools + [n for n in self.user_tools if n not in self.tools]:
                    yield from lat.rows(name, "user" if name in self.user_tools else TOOLS.get(name, "?"))
                return
            ran = []
            for name in self.tools + [n for n in self.user_tools if n not in self.tools]:
                load = self.load_of(name)
                self.ctx.log("%s: proof run, then %s x %d s of %s" % (
                    name, self.precision.describe(self.trials), self.seconds, load_label(load, self.seconds)))
                row = self.measure([name], load, tool=name,
                                   resource="user" if name in self.user_tools else TOOLS.get(name, "?"))
                if row["status"] == "ok":
                    ran.append(name)
                yield row
            if self.combined and len(ran) >= 2:
                load = sorted(set().union(*[self.load_of(n) for n in ran]), key=STRESSORS.index)
                self.ctx.log("all %d at once (%s): proof run, then %d trials x %d s of %s" % (
                    len(ran), ", ".join(ran), self.trials, self.seconds, load_label(load, self.seconds)))
                yield self.measure(ran, load, tool="all", tools_combined=ran, resource="all",
                                   method="combined_abba")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
            if mount:
                subprocess.run(["umount", mount], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(ctx):
    yield from ToolSuite(ctx).run()
