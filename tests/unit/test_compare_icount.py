"""`results.compare` of runs in guest instructions (icount): exact deltas against the determinism
tolerance, runs of one kernel compare as equal, ns and instructions are never compared; and what
any comparison owes a reader: untestable pairs listed apart, a sign change named as such, a warning
when the runs' parameters differ. Recorded runs: tests/fixtures/icount/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lab.agent.common import timing_fields
from lab.analysis import compare
from lab.results import aggregate, stats
from lab.results import store as results

ROOT = Path(__file__).resolve().parents[2]
ICOUNT = ROOT / "tests" / "fixtures" / "icount"
ICOUNT_RUN = ICOUNT / "20261207T081111Z-6.12.118_deb12-amd64-0962"
TCG_RUN = ICOUNT / "20261207T081227Z-6.12.118_deb12-amd64-6288"
INV = Path(sys.executable).parent / "inv"


def second_boot(store: Path, scale: dict[str, float] | None = None, suites: dict | None = None) -> Path:
    """The recorded icount run copied under a new run id (renamed in its manifest and rows): a second
    run of the same kernel. `scale` multiplies a hook's kernel_batch samples (trial i by factor * (1 +
    (-1)^i 2e-4): the 0.02% two boots differ by); `suites` replaces the manifest's parameters."""
    new_id = ICOUNT_RUN.name.replace("0962", "b2b2")
    d = store / new_id
    shutil.copytree(ICOUNT_RUN, d)
    m = json.loads((d / "manifest.json").read_text())
    m["run_id"] = new_id
    if suites is not None:
        m["suites"] = suites
    (d / "manifest.json").write_text(json.dumps(m))
    rows = []
    for line in (d / "hooks.jsonl").read_text().splitlines():
        r = dict(json.loads(line), run_id=new_id)
        if r.get("method") == "kernel_batch":
            f = (scale or {}).get(r["hook"], 1.0)
            r["samples"] = [x * f * (1 + (-1) ** i * 2e-4) for i, x in enumerate(r["samples"])]
            r["ns_median"] = stats.median_ci(r["samples"]).median
        rows.append(json.dumps(r))
    (d / "hooks.jsonl").write_text("\n".join(rows) + "\n")
    return d


def frames(*dirs: Path) -> list[pd.DataFrame]:
    return [aggregate.load_frame([d])[0] for d in dirs]


def kernel_batch(res: pd.DataFrame) -> pd.DataFrame:
    kb = res[res["what"].str.endswith(" kernel_batch")]
    return kb.set_index(kb["what"].str.split().str[0])


def test_ns_and_instructions_are_never_compared():
    fa, fb = frames(ICOUNT_RUN, TCG_RUN)
    with pytest.raises(compare.UnitMismatch) as e:
        compare.compare(fa, fb)
    msg = str(e.value)
    assert "A is in guest instructions (accelerator icount)" in msg and "B is in ns (accelerator tcg)" in msg
    assert msg.startswith("refused:")


def test_two_runs_of_one_kernel_compare_as_equal(tmp_path):
    b = second_boot(tmp_path)
    res = compare.compare(*frames(ICOUNT_RUN, b))
    kb = kernel_batch(res)
    assert len(kb) == 5 and (kb["verdict"] == "no change").all()
    assert kb["p_value"].isna().all() and kb["tested"].all()  # exact: no test, not in any family
    assert kb["note"].str.contains("within the determinism tolerance 0.5%").all()
    assert (kb["metric"] == "insn/op").all()
    assert not res["verdict"].isin(compare.CHANGES).any()


def test_an_instruction_beyond_the_tolerance_is_a_change(tmp_path):
    b = second_boot(tmp_path, scale={"kprobe": 1.01, "fentry": 0.997})  # +1% (beyond), -0.3% (within)
    kb = kernel_batch(compare.compare(*frames(ICOUNT_RUN, b)))
    assert kb.loc["kprobe", "verdict"] == "regression"
    assert kb.loc["kprobe", "delta_abs"] == pytest.approx(3.8, abs=0.1)
    assert "exact: +3.8 insn, beyond the determinism tolerance 0.5%" in kb.loc["kprobe", "note"]
    assert kb.loc["fentry", "verdict"] == "no change" and kb.loc["fentry", "delta"] == pytest.approx(-0.3, abs=0.05)
    assert kb.loc["raw_tp", "verdict"] == "no change"


def test_trials_that_differ_beyond_the_tolerance_are_untestable(tmp_path):
    b = second_boot(tmp_path)
    lines = (b / "hooks.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    for r in rows:
        if r["method"] == "kernel_batch" and r["hook"] == "tracepoint":
            r["samples"][0] *= 1.02  # one disturbed trial: 2% off
    (b / "hooks.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = compare.compare(*frames(ICOUNT_RUN, b))
    tp = kernel_batch(res).loc["tracepoint"]
    # the determinism gate runs on read (lab/results/readgates.py): the row reaches compare already inconclusive
    assert tp["verdict"] == "not comparable" and not tp["tested"]
    assert "B inconclusive: gated on read: trials differ by 2.0" in tp["note"]
    text = compare.format_compare(res, "A", "B", unit="insn", same_kernel=True)
    tested, apart = text.split("\nnot tested (")
    line = "hooks  tracepoint tracepoint bpf_test_run"
    assert line not in tested and line in apart
    assert "false-change rate 0/" in text and "emulated, in guest instructions" in text


def host_row(run_id: str, hook: str, samples: list[float]) -> dict:
    return {"schema": 1, "run_id": run_id, "suite": "hooks", "kernel": "6.18.0", "accelerator": "host",
            "cpu_model": "test cpu", "vcpus": 2, "status": "ok", "reason": "", "time": "2025-01-01T00:00:00+00:00",
            "hook": hook, "attach_point": "x", "variant": "empty", "body_ns": 1.0, "dispatch_ns": 1.0,
            "events": 100, "triggers": 100, **timing_fields("cpu_abba", samples, 1000)}


def make_run(store: Path, run_id: str, rows: list[dict], suites: dict) -> Path:
    rs = results.RunStore.create(store, run_id, {"kernel_alias": "host", "kernel_release": "6.18.0",
                                                 "accelerator": "host", "playbook_name": "quick", "suites": suites})
    for r in rows:
        rs.append_line(r["suite"], json.dumps(r))
    return rs.path


def test_a_negative_added_cost_never_reaches_compare_as_a_figure(tmp_path):
    below = [-12.0, -10.5, -11.0, -9.8, -10.2, -10.9, -11.4, -10.0]
    a = make_run(tmp_path, "run-a", [host_row("run-a", "tracepoint", below)], {"hooks": {"trials": 8}})
    b = make_run(tmp_path, "run-b", [host_row("run-b", "tracepoint", [-x for x in below])], {"hooks": {"trials": 8}})
    res = compare.compare(*frames(a, b))
    assert "gated on read: added cost -10.7 ns" in res["note"].iloc[0]


def test_a_sign_change_is_named_and_differing_parameters_warn(tmp_path):
    from test_results import tools_row  # a tool's throughput loss may cross zero (a hook's added cost is gated)

    below = [-12.0, -10.5, -11.0, -9.8, -10.2, -10.9, -11.4, -10.0]
    a = make_run(tmp_path, "run-a", [tools_row("run-a", "runqlat", below)], {"hooks": {"trials": 8}})
    b = make_run(tmp_path, "run-b", [tools_row("run-b", "runqlat", [-x for x in below])],
                 {"hooks": {"trials": 12}})
    res = compare.compare(*frames(a, b))
    assert list(res["verdict"]) == ["sign change"] and "crosses zero" in res["note"].iloc[0]
    env = dict(os.environ, LAB_RESULTS=str(tmp_path))
    out = subprocess.run([str(INV), "results.compare", "run-a", "run-b"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "warning: the runs' parameters differ: suites.hooks.trials: 8 vs 12" in out.stdout
    assert "improvement" not in out.stdout and "summary: 1 sign change" in out.stdout
    assert "false-change rate 1/1" in out.stdout  # one kernel on both sides


def test_compare_task_refuses_mixed_units_and_passes_two_icount_runs(tmp_path):
    store = tmp_path / "store"
    shutil.copytree(TCG_RUN, store / TCG_RUN.name)
    shutil.copytree(ICOUNT_RUN, store / ICOUNT_RUN.name)
    b = second_boot(store)
    env = dict(os.environ, LAB_RESULTS=str(store))
    refused = subprocess.run([str(INV), "results.compare", TCG_RUN.name, ICOUNT_RUN.name], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "never compared" in refused.stderr + refused.stdout
    same = subprocess.run([str(INV), "results.compare", ICOUNT_RUN.name, b.name], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert same.returncode == 0, same.stderr
    # 25 before the gates on read; the tick-based rows (talk_stime, talk_jiffies) are gated under icount
    assert "changes: 0 of 15 tested measurements (both sides ran one kernel: false-change rate 0/15)" in same.stdout
    assert "warning: the runs' parameters differ" not in same.stdout
