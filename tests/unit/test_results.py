"""The result store, the tidy table and `results.compare` (recorded fixture runs and rows made with the
agent's own row builder)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lab.agent.common import timing_fields
from lab.analysis import compare as comparing
from lab.results import aggregate, stats
from lab.results import store as results

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "runs"
HOST_RUN = FIXTURES / "20261127T053143Z-6.18.44-fc-v782-ee1e"
TCG_RUN = FIXTURES / "20261127T055106Z-6.12.117_deb12-amd64-f721"


def hooks_row(run_id: str, hook: str, center: float, seed: int, accel: str = "host") -> dict:
    rng = random.Random(seed)
    samples = [rng.gauss(center, center * 0.02) for _ in range(12)]
    return {"schema": 1, "run_id": run_id, "suite": "hooks", "kernel": "6.18.0", "accelerator": accel,
            "cpu_model": "test cpu", "vcpus": 2, "status": "ok", "reason": "", "time": "2025-01-01T00:00:00+00:00",
            "hook": hook, "attach_point": "x", "variant": "body", "body_ns": 1.0, "dispatch_ns": 1.0,
            "events": 100, "triggers": 100, **timing_fields("wall_abba", samples, 1000)}


def make_run(store: Path, run_id: str, rows: list[dict], alias: str = "host") -> Path:
    rs = results.RunStore.create(store, run_id, {"kernel_alias": alias, "kernel_release": "6.18.0",
                                                 "accelerator": "host"})
    for r in rows:
        rs.append_line(r["suite"], json.dumps(r))
    rs.update_manifest(outcome={"hooks": {"ok": len(rows)}})
    return rs.path


def known_difference_runs(store: Path, accel: str = "host") -> tuple[Path, Path]:
    a = make_run(store, "run-a", [hooks_row("run-a", "tracepoint", 100, 1, accel),
                                  hooks_row("run-a", "raw_tp", 100, 2, accel),
                                  hooks_row("run-a", "tp_btf", 100, 3, accel)])
    b = make_run(store, "run-b", [hooks_row("run-b", "tracepoint", 130, 4, accel),  # clear regression
                                  hooks_row("run-b", "raw_tp", 70, 5, accel),  # clear improvement
                                  hooks_row("run-b", "tp_btf", 100, 6, accel)])  # same distribution
    return a, b


def test_store_roundtrip_and_manifest(tmp_path):
    a, _ = known_difference_runs(tmp_path)
    run = results.load_run(a)
    assert run.problems == []
    assert len(run.rows) == 3 and run.suites == ["hooks"]
    assert run.manifest["run_id"] == "run-a" and run.manifest["outcome"] == {"hooks": {"ok": 3}}
    assert "lab_version" in run.missing_manifest_fields()
    assert [p.name for p in results.list_runs(tmp_path)] == ["run-a", "run-b"]


def test_corrupt_and_invalid_lines_are_reported_not_dropped(tmp_path):
    run_dir = tmp_path / TCG_RUN.name
    shutil.copytree(TCG_RUN, run_dir)
    good = len(results.load_run(run_dir).rows)
    lines = (run_dir / "hooks.jsonl").read_text().splitlines()
    bad_schema = json.loads(lines[0])
    del bad_schema["kernel"]
    lines[2:2] = ['{"suite": "hooks", "truncated', json.dumps(bad_schema)]
    (run_dir / "hooks.jsonl").write_text("\n".join(lines) + "\n")
    run = results.load_run(run_dir)
    assert len(run.rows) == good  # every good row still loads
    msgs = [str(p) for p in run.problems]
    assert len(msgs) == 2
    assert msgs[0].startswith(f"{run_dir / 'hooks.jsonl'}:3: not JSON")
    assert msgs[1].startswith(f"{run_dir / 'hooks.jsonl'}:4: fails the row schema: missing field 'kernel'")


def test_missing_manifest_is_a_problem(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "hooks.jsonl").write_text(json.dumps(hooks_row("r", "tracepoint", 10, 1)) + "\n")
    run = results.load_run(d)
    assert len(run.rows) == 1 and "missing manifest" in str(run.problems[0])


def test_select_runs_by_id_kernel_and_prefix():
    assert results.select_runs(FIXTURES, HOST_RUN.name) == [HOST_RUN]
    assert results.select_runs(FIXTURES, "host") == [HOST_RUN]
    assert results.select_runs(FIXTURES, "6.12") == [TCG_RUN]
    assert results.select_runs(FIXTURES, "6.12.117+deb12-amd64") == [TCG_RUN]
    assert results.select_runs(FIXTURES, "20261127T0551") == [TCG_RUN]
    assert results.select_runs(FIXTURES, "6.2") == []


def test_tidy_table_and_exports(tmp_path):
    df, runs = aggregate.load_frame([TCG_RUN, HOST_RUN])
    assert len(df) == sum(len(r.rows) for r in runs)
    assert set(df["suite"]) == {"hooks", "maps", "tools"}
    assert df.loc[df["accelerator"] == "tcg", "emulated"].all()
    assert not df.loc[df["accelerator"] == "host", "emulated"].any()
    # targets: kernel, accelerator, vCPUs and CPU model
    assert set(df["group"]) == {aggregate.group_label(k, a, c, v) for k, a, c, v in
                                df[list(aggregate.GROUP_KEYS)].drop_duplicates().itertuples(index=False)}
    assert len(set(df["group"])) == 2
    csv, pq = aggregate.export(df, tmp_path)
    back = pd.read_parquet(pq)
    first = df["samples"].map(lambda s: isinstance(s, list)).idxmax()
    assert len(back) == len(df) and list(back["samples"].iloc[first]) == df["samples"].iloc[first]
    assert len(pd.read_csv(csv)) == len(df)


def tools_row(run_id: str, tool: str, samples: list[float]) -> dict:
    return {"schema": 1, "run_id": run_id, "suite": "tools", "kernel": "6.18.0", "accelerator": "host",
            "cpu_model": "test cpu", "vcpus": 2, "status": "ok", "reason": "", "time": "2025-01-01T00:00:00+00:00",
            "tool": tool, "load": "stress-ng", "method": "throughput_abba", "trials": len(samples),
            "overhead_pct": stats.median_ci(samples).median, "overhead_samples": samples, "events": 10}


def compare_runs(a: Path | list[Path], b: Path | list[Path], **kw) -> pd.DataFrame:
    fa = aggregate.load_frame(a if isinstance(a, list) else [a])[0]
    fb = aggregate.load_frame(b if isinstance(b, list) else [b])[0]
    return comparing.compare(fa, fb, **kw)


def test_compare_gives_the_known_verdicts(tmp_path):
    a, b = known_difference_runs(tmp_path)
    res = compare_runs(a, b)
    verdicts = {w.split()[0]: (v, p) for w, v, p in zip(res["what"], res["verdict"], res["p_value"], strict=True)}
    assert verdicts["tracepoint"][0] == "regression" and verdicts["tracepoint"][1] < 0.001
    assert verdicts["raw_tp"][0] == "improvement" and verdicts["raw_tp"][1] < 0.001
    assert verdicts["tp_btf"][0] == "no change"
    # one policy: q is stats.bh over every p of the table
    assert list(res["q_value"]) == pytest.approx(stats.bh(list(res["p_value"])))
    welch = compare_runs(a, b, test="welch")
    assert list(welch["verdict"]) == list(res["verdict"])


def test_tool_overhead_is_compared_on_samples_in_points(tmp_path):
    base = [1.0, 1.4, 0.6, 1.2, 0.8, 1.1, 0.9, 1.0]
    a = make_run(tmp_path, "run-a", [tools_row("run-a", "shift", base), tools_row("run-a", "jump", base),
                                     tools_row("run-a", "few", [1.0, 1.2])])
    b = make_run(tmp_path, "run-b", [tools_row("run-b", "shift", [x + 0.1 for x in base]),  # inside the noise
                                     tools_row("run-b", "jump", [x + 5 for x in base]),
                                     tools_row("run-b", "few", [5.0, 6.0])])
    res = compare_runs(a, b).set_index(compare_runs(a, b)["what"].str.split().str[0])
    assert res.loc["shift", "verdict"] == "no change" and res.loc["shift", "delta"] == pytest.approx(0.1)
    assert res.loc["shift", "delta_unit"] == "pt"
    assert res.loc["jump", "verdict"] == "regression" and res.loc["jump", "delta"] == pytest.approx(5.0)
    # 2 vs 2 trials cannot reach p < 0.05 (smallest Mann-Whitney p 1/3): not tested, out of the family
    assert res.loc["few", "verdict"] == "untestable" and pd.isna(res.loc["few", "p_value"])
    assert "smallest mannwhitney p is 0.33" in res.loc["few", "note"] and not res.loc["few", "tested"]
    text = comparing.format_compare(compare_runs(a, b), "A", "B")
    assert "+5.0 pt" in text and "[no interval] n=2" in text
    tested, apart = text.split("not tested (1: ")
    assert "few" not in tested and "few" in apart and "untestable" in apart


def test_compare_pools_runs_as_units(tmp_path):
    a1 = make_run(tmp_path, "a1", [hooks_row("a1", "tracepoint", 100, 1)])
    a2 = make_run(tmp_path, "a2", [hooks_row("a2", "tracepoint", 100, 2)])
    b1 = make_run(tmp_path, "b1", [hooks_row("b1", "tracepoint", 130, 3)])
    res = compare_runs([a1, a2], b1)
    assert res["unit"].iloc[0] == "runs" and (res["a_n"].iloc[0], res["b_n"].iloc[0]) == (2, 1)
    assert res["verdict"].iloc[0] == "untestable"  # one run against two cannot be significant
    assert "n=2/1 runs cannot reach p < 0.05" in res["note"].iloc[0] and "more runs per side" in res["note"].iloc[0]


def test_compare_marks_emulated_and_unsupported(tmp_path):
    a, b = known_difference_runs(tmp_path, accel="tcg")
    res = compare_runs(a, b)
    assert set(res["verdict"]) == {"regression (emulated)", "improvement (emulated)", "no change (emulated)"}
    res = compare_runs(TCG_RUN, HOST_RUN)
    kprobe = res[res["what"].str.startswith("kprobe ") & (res["verdict"] != "only in B")]
    assert len(kprobe) == 5  # wall_abba, cpu_abba, talk_stime, talk_jiffies, bpf_stats in the guest
    assert (kprobe["verdict"] == "not comparable").all() and kprobe["note"].str.contains("B unsupported").all()
    mem = res[(res["metric"] == "memlock B") & (res["verdict"] != "only in A") & (res["verdict"] != "only in B")]
    assert not mem.empty and not mem["verdict"].str.contains("emulated").any()  # exact bytes
    assert mem["p_value"].isna().all()
    text = comparing.format_compare(res, "A", "B")
    assert "pipeline checked, timing not representative" in text


def test_compare_task_on_two_host_runs(tmp_path):
    """`inv results.compare A B` as a user runs it: a table with p, q and the verdicts; a side
    that did not complete is flagged, and results.list shows each run's status."""
    _, b = known_difference_runs(tmp_path)
    m = json.loads((b / "manifest.json").read_text())
    (b / "manifest.json").write_text(json.dumps(dict(m, status="partial", status_reason="suite hooks: the VM died")))
    env = dict(os.environ, LAB_RESULTS=str(tmp_path))
    inv = Path(sys.executable).parent / "inv"
    out = subprocess.run([str(inv), "results.compare", "run-a", "run-b"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {ln.split()[1]: ln for ln in out.stdout.splitlines() if ln.startswith("hooks ")}
    assert lines["tracepoint"].rstrip().endswith("regression")
    assert lines["raw_tp"].rstrip().endswith("improvement")
    assert lines["tp_btf"].rstrip().endswith("no change")
    assert "mannwhitney" in out.stdout and "summary: 1 improvement, 1 no change, 1 regression" in out.stdout
    assert "warning: run run-b is partial: suite hooks: the VM died" in out.stdout
    assert "warning: run run-a" not in out.stdout
    listed = subprocess.run([str(inv), "results.list"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    status = {ln.split()[0]: ln.split()[3] for ln in listed.stdout.splitlines()[1:]}
    assert status == {"run-a": "unknown", "run-b": "partial"}, listed.stdout
    exported = subprocess.run([str(inv), "results.export", "--out", str(tmp_path / "x")], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0 and (tmp_path / "x" / "rows.parquet").exists()


def test_progress_line_names_what_was_measured_and_marks_emulation():
    from lab.run.runner import progress_line

    row = hooks_row("r", "kprobe", 100.0, 1, accel="tcg")
    line = progress_line("hooks", row)
    assert "kprobe body wall_abba" in line and "ns/op [emulated]" in line
    mem = {"status": "ok", "map_type": "hash", "flags": 1, "operation": "memory", "max_entries": 10240,
           "memlock_measured": 340864, "memlock_predicted": 340864, "accelerator": "host", "reason": ""}
    line = progress_line("maps", mem)
    assert "hash(flags 0x1) memory 10240" in line and "memlock 340864 B (predicted 340864)" in line
    assert "emulated" not in line


def test_a_suite_that_died_leaves_a_valid_error_row():
    """The agent's row for a suite that raised has the common fields only; it loads, it is not a problem."""
    from lab.agent import schema
    from lab.agent.common import Context

    row = Context("hooks", "r", "host", "/nonexistent", {}).row(status="error", reason="ValueError: boom")
    assert schema.validate(row) == []
    assert "missing field 'hook'" in " ".join(schema.validate(dict(row, status="ok", reason="")))


def test_progress_line_of_a_tool_row():
    from lab.run.runner import progress_line

    tool = {"status": "ok", "tool": "runqlat", "method": "throughput_abba", "overhead_pct": 1.5,
            "overhead_ci_low": -0.5, "overhead_ci_high": 3.25, "events": 1234, "accelerator": "tcg", "reason": ""}
    assert "runqlat throughput_abba throughput lost 1.50% [-0.50, 3.25], 1234 program runs [emulated]" in \
        progress_line("tools", tool)
