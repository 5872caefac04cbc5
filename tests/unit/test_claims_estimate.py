"""Claims 1 and 2 in emulation: decided on the estimated cost (model, emulated) where the rows carry
it, with the instruction verdict beside; where the two disagree the claim is inconclusive and says
why. On the recorded icount matrix rows (6.1 and 6.12); the per-trial estimates added here stand in
for the plugin's (a recorded run under the plugin is still to come: docs/findings/2026-12.md)."""

from __future__ import annotations

from pathlib import Path

from lab.analysis import claims, expected
from lab.core import units
from lab.report import page as report
from lab.results import aggregate
from lab.results.store import load_runs

RUNS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "icount_matrix").iterdir())
SPEC = claims.parse_claims(report.talk_data())
# extra model cycles per trigger, the shape the plugin shows: kprobes pay ftrace's regs save
# (pushfq/popfq), kretprobe and fexit their returns; tracepoint and fentry nearly nothing
EXTRA = {"kprobe": 120.0, "kretprobe": 240.0, "fexit": 40.0, "fentry": 2.0, "tracepoint": 4.0}


def verdicts(with_estimate: bool):
    runs = load_runs(RUNS)
    df = aggregate.rows_frame(runs)
    if with_estimate:
        kb = (df["method"] == "kernel_batch") & (df["status"] == "ok")
        df.loc[kb, "est_samples"] = df.loc[kb].apply(
            lambda r: [s * 0.5 + EXTRA.get(r["hook"], 0.0) for s in r["samples"]], axis=1)
    return {(v.claim, v.group.split(" ")[0]): v for v in claims.evaluate(df, SPEC, asked=expected.asked(runs))}


def test_without_an_estimate_claims_stay_decided_in_instructions():
    v = verdicts(False)
    c1 = v[(1, "6.1.0-57-amd64")]
    assert c1.verdict == claims.FAILS and c1.unit == units.INSN  # tracepoint 1034.7 vs kprobe 956.4 insn
    est = [p for p in c1.parts if p.role == "estimate"]
    assert len(est) == 2 and all("only icount runs under the event-count plugin" in p.reason for p in est)


def test_the_estimate_decides_and_a_disagreement_is_inconclusive():
    v = verdicts(True)
    c1 = v[(1, "6.1.0-57-amd64")]  # the estimate puts tracepoint below kprobe, the instructions do not
    assert c1.verdict == claims.INCONCLUSIVE and c1.unit == units.MODEL
    assert c1.reason.startswith(f"{claims.EST_LABEL} says holds") and "guest instructions say does not hold" in \
        c1.reason and "disagree" in c1.reason
    parts = {p.name: p for p in c1.parts}
    assert parts[f"{claims.EST_LABEL}: tracepoint < kprobe (kernel_batch)"].test == f"exact, {claims.EST_LABEL}"
    c1b = v[(1, "6.12.118+deb12-amd64")]  # both say holds
    assert c1b.verdict == claims.HOLDS and c1b.reason.startswith(f"{claims.EST_LABEL}: holds")
    assert "in guest instructions too" in c1b.reason
    c2 = v[(2, "6.1.0-57-amd64")]
    assert c2.verdict == claims.HOLDS and c2.unit == units.MODEL
