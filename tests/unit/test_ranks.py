"""The order of attach types in guest instructions against the published ns and the host's ns, on
recorded runs (6.12 under icount; this workplace's host kernel)."""

from __future__ import annotations

from pathlib import Path

from lab.analysis import ranks
from lab.results import aggregate
from lab.results.store import load_runs

FIX = Path(__file__).resolve().parents[1] / "fixtures"
ICOUNT = FIX / "icount" / "20261207T081111Z-6.12.118_deb12-amd64-0962"
TCG = FIX / "icount" / "20261207T081227Z-6.12.118_deb12-amd64-6288"
HOST = FIX / "runs" / "20261127T053143Z-6.18.44-fc-v782-ee1e"


def test_instruction_order_against_published_and_host():
    items = ranks.orderings(aggregate.rows_frame(load_runs([ICOUNT, HOST])))
    pub = next(o for o in items if o.versus.startswith("published"))
    # recorded: raw_tp 109.1 < fentry 157.3 < tracepoint 315.3 < kprobe 380.4 < kretprobe 661.7 insn
    assert pub.hooks == ["raw_tp", "fentry", "tracepoint", "kprobe", "kretprobe"]
    assert pub.rho is not None and pub.rho >= 0.8  # published: raw_tp < fentry < tp < kprobe < kretprobe
    a, b = pub.ratios["kretprobe"]
    assert 5.5 < a < 6.5 and b > a  # traps are undercounted in instructions: hardware's ratio is larger
    md = ranks.markdown(items)
    assert "published (kernel bench" in md and "raw_tp < fentry" in md


def test_time_rows_are_never_ranked_as_instructions():
    assert ranks.orderings(aggregate.rows_frame(load_runs([TCG, HOST]))) == []  # no icount target
