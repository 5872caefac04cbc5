"""Benchmark: the lab's kernel_batch rows beside the kernel's own trigger bench, on this machine.

Each round runs, back to back, the real `tools/testing/selftests/bpf/bench` (built from Debian's
linux-source package by lab/kernels/trigbench.py: trig-kernel-count, trig-rawtp, trig-tp, the producer
pinned to one CPU) and the lab's kernel_batch measurement of raw_tp and tracepoint (batchbench,
the helper `./labctl bench.hooks` runs, with the same parameters as the default playbook but
fewer trials), and prints per round and overall:
  bench    ns/event over trig-kernel-count = 1000/rate - 1000/count_rate (wall clock, as the bench
           reports it), with the spread of its per-second figures
  lab      ns_median [95% CI] over its counting driver (thread CPU time: the row's headline) and
           the same difference in wall time (the row's wall_ns_median)
  ratio    lab / bench (issue 14 asks for 0.8-1.25), with the load average and the time.
Not a test: it prints figures, asserts nothing.

    ./labctl bench.reference                      # 3 rounds, bench 1 s warm-up + 5 s per benchmark
    ./labctl bench.reference --rounds 5 --variants empty,count
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.agent.common import cpu_model  # noqa: E402
from lab.agent.hooks.batch import rows_from_records, run_batch  # noqa: E402
from lab.core import interrupt  # noqa: E402
from lab.core.config import LabError, Paths  # noqa: E402
from lab.guest.bpfbuild import build_bpf  # noqa: E402
from lab.kernels import trigbench as kernelbench  # noqa: E402

BENCH = {"raw_tp": "trig-rawtp", "tracepoint": "trig-tp"}
COUNT = "trig-kernel-count"


def now() -> str:
    return time.strftime("%H:%M:%S", time.gmtime())


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def lab_row(bpf: Path, hook: str, variant: str, cpu: int, trials: int, batch: int, block_ms: int) -> dict:
    """One kernel_batch row (the agent's own code path: batchbench + rows_from_records), pinned to `cpu`."""
    args = ["--obj", bpf / "hook_batch.bpf.o", "--prog", f"{hook}_{variant}", "--trigger", "kfunc",
            "--batch", batch, "--trials", trials, "--block-ms", block_ms, "--stats-trials", 0]
    helper = ["taskset", "-c", str(cpu), str(bpf / "batchbench")]
    try:
        recs = run_batch(helper[0], helper[1:] + [str(a) for a in args], timeout=600)
    except RuntimeError as e:
        raise LabError(f"batchbench {hook}_{variant}: exit {e.args[0]}: {e.args[1]}") from None

    def row(status, reason, **fields):
        return dict(fields, status=status, reason=reason)

    return rows_from_records(row, {"hook": hook, "variant": variant}, recs)[0]


def bench_run(binary: Path, bpf: Path, name: str, a: argparse.Namespace) -> tuple[kernelbench.BenchResult, int]:
    """One kernel bench run, with batchbench's stats probe beside it: (result, program runs the
    kernel's BPF stats counted meanwhile; nonzero: someone had them on, ~50 ns per run here)."""
    cmd = [str(bpf / "batchbench"), "--obj", str(bpf / "hook_batch.bpf.o"), "--stats-probe",
           str((a.warmup + a.duration) * 1000)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as probe:
        try:
            res = kernelbench.run(binary, name, a.cpu, a.warmup, a.duration, a.batch)[0]
            out, err = probe.communicate(timeout=60)
        finally:
            if probe.poll() is None:
                probe.kill()
                probe.wait()
    recs = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    if not recs:
        raise LabError(f"batchbench --stats-probe: {err.strip()[-500:]}")
    return res, recs[0]["stats_runs"]


def fmt_ci(med: float, lo: float | None, hi: float | None) -> str:
    return f"{med:6.1f} [{lo:.1f}, {hi:.1f}]" if lo is not None else f"{med:6.1f}"


def one_round(rnd: int, a: argparse.Namespace, binary: Path, bpf: Path, variants: list[str]) -> dict:
    """The bench's three benchmarks, then the lab's rows; prints them; returns the figures."""
    start, load0 = now(), load()
    res, stats_on = {}, {}
    for name in (COUNT, *BENCH.values()):
        res[name], stats_on[name] = bench_run(binary, bpf, name, a)
    rows = {(h, v): lab_row(bpf, h, v, a.cpu, a.trials, a.batch, a.block_ms) for h in BENCH for v in variants}
    foreign = sorted({f for r in res.values() for f in r.foreign})
    lab_foreign = {k: r["foreign_trials"] + r["stats_on_trials"] for k, r in rows.items()
                   if r["foreign_trials"] or r["stats_on_trials"]}
    stats_on = {k: v for k, v in stats_on.items() if v}
    out = {"clean": not foreign and not lab_foreign and not stats_on, "bench": {}, "lab": {}}
    count = res[COUNT]
    print(f"\nround {rnd + 1}/{a.rounds}  {start}-{now()} UTC  load {load0} -> {load()}"
          f"{'' if out['clean'] else '  DISTURBED (left out of the clean summary)'}")
    if foreign:
        print(f"  other runs' hook programs were loaded while the bench ran: {foreign}")
    if stats_on:
        print(f"  the kernel's BPF stats were on (another process) while the bench ran: {stats_on} probe runs counted")
    print(f"  bench {COUNT}: {count.rate:.3f} +- {count.stddev:.3f} M/s = {count.ns_per_event:.1f} ns/event"
          f" (process CPU {count.cpu_ns_per_event:.1f} ns/event)")
    for hook, name in BENCH.items():
        r = res[name]
        add, cpu_add = kernelbench.added_ns(r, count), kernelbench.added_cpu_ns(r, count)
        per = kernelbench.per_iter_added(r, count)
        out["bench"][hook] = (add, cpu_add)
        print(f"  {hook:10s} bench {name}: {r.rate:.3f} +- {r.stddev:.3f} M/s = {r.ns_per_event:.1f} ns/event,"
              f" over count {add:6.1f} ns (per second {min(per):.1f} to {max(per):.1f});"
              f" on its process CPU time {cpu_add:6.1f} ns")
        for v in variants:
            row = rows[(hook, v)]
            med, wall = row["ns_median"], row["wall_ns_median"]
            out["lab"][(hook, v)] = (med, wall)
            print(f"  {hook:10s} lab {v:5s} cpu {fmt_ci(med, row['ns_ci_low'], row['ns_ci_high'])} ns"
                  f"  wall {fmt_ci(wall, row['wall_ns_ci_low'], row['wall_ns_ci_high'])} ns"
                  f"  ({row['status']}, foreign trials {row['foreign_trials']},"
                  f" stats-on trials {row['stats_on_trials']})")
            print(f"  {'':10s} ratio lab/bench {med / add:.2f}  (lab wall / bench {wall / add:.2f};"
                  f" lab cpu / bench CPU {med / cpu_add:.2f}); per event on CPU time, hooked / counting"
                  f" baseline: lab {med + row['count_ns']:.1f} / {row['count_ns']:.1f} ns,"
                  f" bench {r.cpu_ns_per_event:.1f} / {count.cpu_ns_per_event:.1f} ns")
    return out


def spread(xs: list[float], f: str = ".1f") -> str:
    return f"{statistics.median(xs):{f}} [{min(xs):{f}}, {max(xs):{f}}]" if xs else "-"


def summary(rounds: list[dict], variants: list[str]) -> None:
    for title, sel in (("all", rounds), ("clean", [r for r in rounds if r["clean"]])):
        print(f"\n{title} rounds: {len(sel)} (median [min, max] over rounds)")
        if not sel:
            continue
        for hook in BENCH:
            b = [r["bench"][hook][0] for r in sel]
            c = [r["bench"][hook][1] for r in sel]
            print(f"  {hook:10s} bench over count {spread(b)} ns  (on its CPU time {spread(c)} ns)")
            for v in variants:
                lab = [r["lab"][(hook, v)][0] for r in sel]
                rat = [r["lab"][(hook, v)][0] / r["bench"][hook][0] for r in sel]
                crat = [r["lab"][(hook, v)][0] / r["bench"][hook][1] for r in sel]
                print(f"  {hook:10s} lab {v:5s} {spread(lab)} ns  ratio lab/bench {spread(rat, '.2f')}"
                      f" (issue 14: 0.80-1.25); on the bench's CPU time {spread(crat, '.2f')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="bench seconds per benchmark (after --warmup)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cpu", type=int, default=0, help="CPU both measuring threads are pinned to")
    ap.add_argument("--batch", type=int, default=100, help="triggers per driver run (both tools)")
    ap.add_argument("--trials", type=int, default=20, help="lab trials (ABC/CBA) per row")
    ap.add_argument("--block-ms", type=int, default=100)
    ap.add_argument("--variants", default="empty", help="lab program variants: empty (tgid filter + count), "
                    "count (count only, the bench's program)")
    ap.add_argument("--suite", default=kernelbench.DEFAULT_SUITE, help="Debian suite whose linux-source to build")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    paths = Paths()
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    build = kernelbench.ensure(paths, a.suite)
    build_bpf(paths)
    bpf = paths.build / "bpf"
    print(f"kernel {os.uname().release}  accelerator host  CPU {cpu_model()} x{os.cpu_count()}  "
          f"bench: {build.label} ({build.binary})  pinned to CPU {a.cpu}  batch {a.batch}", flush=True)
    rounds: list[dict] = []
    with interrupt.handling():
        for rnd in range(a.rounds):
            rounds.append(one_round(rnd, a, build.binary, bpf, variants))
    summary(rounds, variants)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as e:
        sys.exit(f"error: {e}")
    except interrupt.Interrupted as e:
        sys.exit(e.exit_code)
