"""The kernel matrix in guest instructions (lab/analysis/insntable.py): attach type x kernel and map type x
kernel, kernels in version order, the change from each kernel to the next; in the report (HTML and
Markdown) and in results.summary. Built from the recorded icount run (tests/fixtures/icount/) and
copies of it named as other kernels, with their kernel_batch figures scaled (stated per test)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from lab.agent.hooks.gates import MAP_KERNEL_METHODS
from lab.analysis import insntable
from lab.core import units
from lab.report import page as report
from lab.results import aggregate
from lab.run import nightly

ROOT = Path(__file__).resolve().parents[2]
ICOUNT_RUN = ROOT / "tests" / "fixtures" / "icount" / "20261207T081111Z-6.12.118_deb12-amd64-0962"
HOST_RUN = ROOT / "tests" / "fixtures" / "runs" / "20261127T053143Z-6.18.44-fc-v782-ee1e"


def as_kernel(store: Path, release: str, alias: str, scale: dict[str, float]) -> Path:
    """The recorded icount run copied as a run of another kernel: its kernel_batch samples of each
    hook multiplied by scale[hook] (1 when absent)."""
    run_id = f"20261207T090000Z-{release}-{alias.replace('.', '')}"
    d = store / run_id
    shutil.copytree(ICOUNT_RUN, d)
    m = json.loads((d / "manifest.json").read_text())
    m.update(run_id=run_id, kernel_release=release, kernel_alias=alias)
    (d / "manifest.json").write_text(json.dumps(m))
    rows = []
    for line in (d / "hooks.jsonl").read_text().splitlines():
        r = dict(json.loads(line), run_id=run_id, kernel=release)
        if r["method"] == "kernel_batch":
            r["samples"] = [x * scale.get(r["hook"], 1.0) for x in r["samples"]]
        rows.append(json.dumps(r))
    (d / "hooks.jsonl").write_text("\n".join(rows) + "\n")
    return d


def three_kernels(tmp_path: Path) -> list[Path]:
    newer = as_kernel(tmp_path, "6.19.0-rc2", "next", {"kprobe": 1.10, "raw_tp": 1.001})
    older = as_kernel(tmp_path, "5.10.0-30-amd64", "5.10", {"fentry": 0.9})
    return [newer, ICOUNT_RUN, older]  # not in version order on purpose


def test_version_order():
    releases = ["6.12.118+deb12-amd64", "5.10.0-30-amd64", "6.19.0-rc2", "6.1.0-18-amd64", "6.19.0"]
    assert sorted(releases, key=insntable.version_key) == [
        "5.10.0-30-amd64", "6.1.0-18-amd64", "6.12.118+deb12-amd64", "6.19.0-rc2", "6.19.0"]


def test_attach_type_by_kernel_with_the_change_between_kernels(tmp_path):
    df = aggregate.load_frame(three_kernels(tmp_path) + [HOST_RUN])[0]
    (t,) = insntable.build(df)  # no icount map rows: one table; the host's ns rows never enter
    assert t["kernels"] == ["5.10.0-30-amd64 (5.10)", "6.12.118+deb12-amd64 (6.12)", "6.19.0-rc2 (next)"]
    assert t["head"] == ["attach type, program", "5.10.0-30-amd64 (5.10)", "change 5.10 -> 6.12",
                         "6.12.118+deb12-amd64 (6.12)", "change 6.12 -> next", "6.19.0-rc2 (next)"]
    rows = {r["cells"][0]: r["cells"] for r in t["rows"]}
    assert list(rows) == ["raw_tp empty", "fentry empty", "tracepoint empty", "kprobe empty", "kretprobe empty"]
    # fentry: 141.6 on 5.10 (0.9 x 157.3), +15.7 (+11.11%) to 6.12, unchanged to next
    assert rows["fentry empty"][1] == "141.6" and rows["fentry empty"][2] == "+15.7 (+11.11%)"
    assert rows["fentry empty"][4] == "+0.0 (+0.00%) ="
    # kprobe: +10% on next, a change; raw_tp +0.1%, within the 0.5% tolerance: marked "="
    assert rows["kprobe empty"][4] == "+38.0 (+10.00%)" and rows["kprobe empty"][5] == "418.4"
    assert rows["raw_tp empty"][4].endswith("(+0.10%) =")
    assert units.INSN_NOTE in t["note"] and "emulated, in guest instructions" in t["note"]


def test_map_type_by_kernel_from_kernel_driven_rows():
    def row(kernel: str, map_type: str, op: str, samples: list[float], status: str = "ok", **kw) -> dict:
        return dict(dict(group=f"{kernel} (icount)", kernel=kernel, kernel_alias=kernel, vcpus=2, cpu_model="max",
                         suite="maps", driver="kernel", key_space="dense", contention="1cpu", flags=0, operation=op,
                         map_type=map_type, status=status, samples=samples, run=f"r-{kernel}", figure_unit="insn",
                         method=MAP_KERNEL_METHODS[0]),
                    **kw)

    df = pd.DataFrame([
        row("6.1.0", "hash", "update", [200.0, 200.2, 199.8]), row("6.12.0", "hash", "update", [180.0] * 3),
        row("6.1.0", "array", "lookup", [40.0] * 3), row("6.12.0", "array", "lookup", [], status="unsupported"),
        row("6.1.0", "hash", "lookup", [50.0] * 3), row("6.12.0", "hash", "lookup", [50.5] * 3),  # +1%: within 2%
        row("6.12.0", "hash", "update", [1.0] * 3, contention="allcpu"),  # not a 1-CPU row: not in the table
        dict(row("6.12.0", "hash", "lookup", [5.0] * 3), figure_unit="ns"),  # ns: never in an instruction table
    ])
    t = insntable.map_table(df[df["figure_unit"] == "insn"])
    rows = {r["cells"][0]: r["cells"] for r in t["rows"]}
    assert set(rows) == {"array lookup", "hash lookup", "hash update"}
    assert rows["hash update"][1:] == ["200.0", "-20.0 (-10.00%)", "180.0"]
    assert rows["hash lookup"][1:] == ["50.0", "+0.5 (+1.00%) =", "50.5"]
    assert rows["array lookup"][1:] == ["40.0", "-", "unsupported"]
    assert "'=' marks a change within the determinism tolerance (2%)" in t["note"]
    assert [x["title"].split(":")[0] for x in insntable.build(df)] == ["Map type x kernel"]


def test_report_and_summary_show_the_instruction_matrix(tmp_path):
    dirs = three_kernels(tmp_path)
    html = report.write_report(dirs, tmp_path / "rep").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    assert 'id="insn-matrix"' in html and "## Kernel matrix in guest instructions" in md
    assert "+38.0 (+10.00%)" in html and "+38.0 (+10.00%)" in md
    assert md.index("## Kernel matrix in guest instructions") < md.index("## Hooks: added cost per event")
    summary = nightly.summary(dirs)
    assert "## Kernel matrix in guest instructions" in summary and "| kprobe empty | 380.4 |" in summary
    assert "| icount: emulated (QEMU TCG, -icount shift=0); figures in guest instructions" in summary
    assert "## Kernel matrix" not in nightly.summary([HOST_RUN])
