"""./labctl lint's CI part (.ci/lint): shellcheck over the scripts and every workflow `run:` block,
actionlint, check-jsonschema and zizmor over the workflows; the real files pass and a broken
workflow is caught by each of shellcheck (in a run: block) and actionlint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = [sys.executable, str(ROOT / ".ci" / "lint")]
BAD = """name: bad
on: push
permissions:
  contents: read
jobs:
  j:
    runs-on: ubuntu-24.04
    needs: nothere
    steps:
      - name: unquoted
        run: |
          foo="a b"
          echo $foo ${{ github.ref }}
"""


def test_the_ci_files_pass():
    proc = subprocess.run(LINT, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for tool in ("shellcheck", "actionlint", "check-jsonschema", "zizmor"):
        assert f"lint: {tool}: ok" in proc.stderr, proc.stderr


def test_every_run_block_is_shellchecked():
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("ci_lint", str(ROOT / ".ci" / "lint"))
    spec = importlib.util.spec_from_loader("ci_lint", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    import yaml

    for wf in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        runs = [s["run"] for job in yaml.safe_load(wf.read_text())["jobs"].values() for s in job["steps"] if "run" in s]
        assert len(mod.run_blocks(wf)) == len(runs) > 0, wf.name
    names = {p.name for p in mod.shell_scripts()}
    assert {"labctl", "container", "step", "previous", "run", "lock"} <= names and "lint" not in names


def test_a_broken_workflow_is_caught(tmp_path):
    wf = tmp_path / "bad.yml"
    wf.write_text(BAD)
    proc = subprocess.run([*LINT, "--only", "shellcheck,actionlint", str(wf)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 1
    assert "bad.yml: job j, step 1 (unquoted)" in proc.stdout and "SC2086" in proc.stdout, proc.stdout
    assert "line 2:" in proc.stdout  # the line inside the run: block
    assert 'needs job "nothere"' in proc.stdout, proc.stdout
    assert "lint: shellcheck: 1 finding(s)" in proc.stderr and "lint: actionlint: 1 finding(s)" in proc.stderr
