"""The lab as a Python package: pyproject.toml builds a wheel (setuptools, offline) holding lab/ and
the `ebpf-lab` console script, which runs the same tasks as ./labctl; --version names the lab's
version and commit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.wheel import build_wheel

ROOT = Path(__file__).resolve().parents[2]


def _tasks(listing: str) -> set[str]:
    return set(re.findall(r"^\s+([\w.-]+)\s", listing, re.M))


def test_wheel_holds_the_lab_its_sources_and_its_console_script(tmp_path):
    whl = build_wheel(tmp_path, git=False)
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        z.extractall(tmp_path / "site")
    assert {"lab/__init__.py", "lab/cli/__init__.py", "lab/cli/bench.py", "lab/agent/__main__.py",
            "lab/data/talk.yaml", "lab/tree/bpf/Makefile", "lab/tree/bpf/hook_open.bpf.c",
            "lab/tree/images/kernels.yaml", "lab/tree/playbooks/default.yaml", "lab/_build_info.json"} <= names
    assert any(n.startswith("lab/tree/bpf/helpers/") for n in names)  # the C helpers' sources too
    assert not any(n.startswith(("tests/", "bpf/", "results/")) for n in names)
    assert re.search(r"^\[console_scripts\]\s*\nebpf-lab = lab\.cli:main", entry_points, re.M)
    # the console script's entry point, from the unpacked wheel, outside the checkout
    run = [sys.executable, "-c", "import sys; from lab.cli import main; main(['ebpf-lab', *sys.argv[1:]])"]
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    got = subprocess.run([*run, "--list"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert got.returncode == 0, got.stderr
    want = subprocess.run([str(ROOT / "labctl"), "--list"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert _tasks(got.stdout) == _tasks(want.stdout)
    assert {"bench.all", "kernels.list", "lab.status"} <= _tasks(got.stdout)
    ver = subprocess.run([*run, "--version"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert ver.stdout.strip() == "ebpf-overhead-lab 0.1.0 (commit unknown (built outside a git checkout))", ver.stdout


def test_labctl_version_is_the_labs_and_its_commit():
    proc = subprocess.run([str(ROOT / "labctl"), "--version"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    described = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                               cwd=ROOT).stdout.strip()
    assert proc.returncode == 0 and proc.stdout.strip() == f"ebpf-overhead-lab 0.1.0 (commit {described})", proc.stdout


def test_kernels_list_json_offline_reads_no_archive(monkeypatch, capsys):

    from lab.cli import kernels as kernel_tasks
    from lab.kernels import catalog as kernels
    from lab.kernels import debarchive

    def no_network(*a, **k):
        raise AssertionError("kernels.list --offline read the archive")

    monkeypatch.setattr(kernels, "debian_packages", no_network)
    monkeypatch.setattr(debarchive, "Suite", no_network)
    kernel_tasks.list_.body(None, offline=True, json_=True)
    doc = json.loads(capsys.readouterr().out)
    _, entries = kernels.catalog()
    assert [k["alias"] for k in doc] == list(entries)
    assert all(k["offered"] is None for k in doc if k["source"] == "debian")
    assert sum(k["default"] for k in doc) == 1 and all(isinstance(k["cached"], list) for k in doc)


def test_results_list_and_lab_status_json(monkeypatch, capsys):
    from types import SimpleNamespace

    from lab.cli import labs as lab_tasks

    fixtures = ROOT / "tests" / "fixtures" / "runs"
    proc = subprocess.run([str(ROOT / "labctl"), "results.list", "--json"], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, LAB_RESULTS=str(fixtures)), timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["run_id"] for r in doc] == sorted(d.name for d in fixtures.iterdir() if d.is_dir())
    assert {"kernel", "accelerator", "status", "rows", "problems", "suites"} <= set(doc[0])
    st = SimpleNamespace(release="6.12.1", accelerator="kvm", cpus=2, memory="2G", port=2222, sid=10, qemu_pid=11,
                         boot_seconds=3.5)
    labs = [SimpleNamespace(name="6.12", dir=Path("/x"), checked=lambda: SimpleNamespace(kind="up", state=st, why="")),
            SimpleNamespace(name="6.1", dir=Path("/y"), checked=lambda: SimpleNamespace(kind="busy", state=None,
                                                                                          why="starting"))]
    monkeypatch.setattr(lab_tasks, "all_labs", lambda: labs)
    lab_tasks.status.body(None, json_=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["state"] == "up" and doc[0]["kernel"] == "6.12.1" and doc[0]["port"] == 2222
    assert doc[1] == {"name": "6.1", "state": "busy", "why": "starting"}
