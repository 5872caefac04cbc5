"""The GitHub workflows (.github/workflows/) validated offline: the schema of GitHub workflows
(check-jsonschema --builtin-schema vendor.github-workflows), zizmor's security audit (--offline),
actions pinned by full commit SHA, and every ./labctl task a step runs exists (in ./labctl --list, and
`inv --help TASK`, what ./labctl runs, shows it with the options the steps give)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    exe = BIN / name
    path = str(exe) if exe.exists() else shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed: it is in requirements.lock (./labctl rebuilds the venv)")
    return path


def _steps() -> list[tuple[str, dict]]:
    out = []
    for wf in WORKFLOWS:
        for job in yaml.safe_load(wf.read_text())["jobs"].values():
            out += [(wf.name, s) for s in job.get("steps", [])]
    return out


def test_both_workflows_exist():
    assert {w.name for w in WORKFLOWS} == {"ci.yml", "nightly.yml"}


def test_schema():
    proc = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_offline_finds_nothing():
    proc = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", str(ROOT / ".github" / "workflows")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings" in proc.stdout, proc.stdout


def test_actions_pinned_by_sha_and_permissions_minimal():
    for wf in WORKFLOWS:
        data = yaml.safe_load(wf.read_text())
        assert data["permissions"] == {"contents": "read"}, wf.name
    for name, step in _steps():
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), (name, step["uses"])
        # no ${{ }} expansion inside a shell script (template injection): values come through env
        assert "${{" not in step.get("run", ""), (name, step.get("name"))


def test_every_labctl_task_a_step_runs_exists():
    tasks = set()
    for _, step in _steps():
        tasks |= set(re.findall(r"(?:\./labctl|python -m lab\.cli)\s+([a-z][\w.-]*)", step.get("run", "")))
    tasks |= set(re.findall(r"\./labctl\s+([\w.-]+)", (ROOT / ".ci" / "run").read_text()))
    assert {"kernels.matrix", "kernels.cachekey", "bench.all", "results.check", "results.report",
            "results.summary", "test"} <= tasks
    proc = subprocess.run([str(ROOT / "labctl"), "--list"], capture_output=True, text=True, cwd=ROOT)
    listed = set(re.findall(r"^\s+([\w.-]+)", proc.stdout, re.M))
    helps = {}
    for t in sorted(tasks):
        assert t in listed, f"{t} is not a labctl task"
        helps[t] = _help(t)  # the same program ./labctl runs, in this process (a subprocess each took 3 s)
        assert "Usage:" in helps[t], t
    # the options the steps give exist too
    for t, flag in [("kernels.cachekey", "--kernel"), ("bench.all", "--playbook"), ("results.check", "--accelerator"),
                    ("results.report", "--all"), ("results.summary", "--previous")]:
        assert flag in helps.get(t) or _help(t), (t, flag)


def _help(task: str) -> str:
    """`./labctl --help TASK`'s text, from lab.cli's program run in-process."""
    import contextlib
    import io

    from lab.cli import program

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            program().run(["labctl", "--help", task], exit=False)
        except SystemExit as e:
            assert not e.code, (task, e.code)
    return out.getvalue()


def test_long_steps_have_a_time_limit_the_lab_sees():
    """The lab runs under .ci/step's limit (SIGTERM, the run marked) below the step's timeout-minutes,
    below the job's; a leg uploads only the runs results.stage copied (ended or marked)."""
    bench = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())["jobs"]["bench"]
    steps = bench["steps"]
    long = [s for s in steps if "bench.all" in s.get("run", "")]
    assert long
    for s in long:
        m = re.match(r"exec \.ci/container lab (\d+) \./labctl bench\.all", s["run"])
        assert m, s["run"]
        assert int(m.group(1)) + 60 < s["timeout-minutes"] * 60 < bench["timeout-minutes"] * 60
    names = [s.get("name", "") for s in steps]
    stage = next(s for s in steps if "results.stage" in s.get("run", ""))
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert names.index(stage["name"]) < names.index(upload["name"])
    assert ".ci/container wait" in stage["run"] and "--out .ci-upload" in stage["run"]
    assert upload["with"]["path"] == ".ci-upload/" and upload["with"]["overwrite"] is True


def test_report_job_tells_the_truth():
    """Not run on a cancelled night; a failing summary fails its step (pipefail through tee); a re-run
    overwrites artifacts; the baseline is per kernel, scheduled runs on the default branch only."""
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())["jobs"]
    report = jobs["report"]
    assert report["if"] == "${{ !cancelled() }}"
    for job in jobs.values():
        for s in job["steps"]:
            assert s.get("if") != "always()" or "stop" in s.get("run", "") or "stage" in s.get("run", "") \
                or "upload-artifact" in s.get("uses", ""), s
            if "| tee" in s.get("run", ""):
                assert "set -o pipefail" in s["run"], s["name"]
            if "upload-artifact" in s.get("uses", ""):
                assert s["with"].get("overwrite") is True, s["name"]
    runs = "\n".join(s.get("run", "") for s in report["steps"])
    assert ".ci/previous" in runs and "--baseline baseline/baseline.json" in runs and "gh run list" not in runs
    previous = (ROOT / ".ci" / "previous").read_text()
    assert "--event schedule" in previous and '--branch "$branch"' in previous and "default_branch" in previous
    assert "results.baseline" in previous and 'run-$kernel' in previous


def test_matrix_comes_from_the_playbook_the_legs_run():
    """One source: the matrix job prints the nightly playbook's matrix and every leg runs that playbook."""
    from lab.run import nightly, playbooks

    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())["jobs"]
    runs = [s.get("run", "") for s in jobs["matrix"]["steps"]]
    (m,) = [re.search(r"(?:\./labctl|python -m lab\.cli) kernels\.matrix --playbook ([\w./-]+)", r)
            for r in runs if "kernels.matrix" in r]
    assert m, runs
    legs = [re.search(r"\./labctl bench\.all .*--playbook (\S+)", s.get("run", "")) for s in jobs["bench"]["steps"]]
    assert {x.group(1) for x in legs if x} == {m.group(1)}
    assert jobs["bench"]["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    pb = playbooks.load(m.group(1))
    assert nightly.matrix(m.group(1)) == {"kernel": list(pb.matrix)}
    assert set(pb.matrix) == set(yaml.safe_load(pb.path.read_text())["kernels"]) | {"host"}
