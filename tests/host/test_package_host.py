"""The installed wheel on this machine's kernel: pip install into a fresh venv, then a host suite run
from an empty directory (tests/unit/test_package.py checks the wheel's contents)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.wheel import ROOT, build_wheel


@pytest.mark.host
def test_installed_wheel_runs_a_host_suite_from_an_empty_directory(tmp_path):
    """pip install of the wheel into a fresh venv, then `ebpf-lab bench.hooks --kernel host` from an
    empty directory: a complete run, its rows in $LAB_RESULTS, built from the wheel's own BPF sources
    into the cache (nothing written into the package). The venv's dependencies come from this lab's
    environment through a .pth file: the wheel itself is installed for real, the runtime lock's
    packages are not downloaded again (a full `pip install` from PyPI is in docs/layout.md)."""
    if os.geteuid() != 0:
        pytest.skip("the host target loads BPF programs: needs root")
    whl = build_wheel(tmp_path, git=True)
    sha = subprocess.run(["git", "-C", str(tmp_path / "src"), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=True).stdout.strip()
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    import sysconfig

    (Path(purelib) / "zz_lab_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", str(whl)],
                   check=True, timeout=300)
    empty = tmp_path / "empty"
    empty.mkdir()
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LAB_RESULTS", "VIRTUAL_ENV")}
    env.update(LAB_RESULTS=str(store), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    exe = str(venv / "bin" / "ebpf-lab")
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True, cwd=empty, env=env, timeout=120)
    assert ver.stdout.strip() == f"ebpf-overhead-lab 0.1.0 (commit {sha})", ver.stdout + ver.stderr
    before = sorted(p.relative_to(purelib) for p in (Path(purelib) / "lab").rglob("*") if "__pycache__" not in p.parts)
    playbook = ROOT / "tests" / "fixtures" / "playbooks" / "wheel_playbook.yaml"
    proc = subprocess.run([exe, "bench.hooks", "--kernel", "host", "--playbook", str(playbook), ],
                          capture_output=True, text=True, cwd=empty, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "run complete" in proc.stdout + proc.stderr
    assert list(empty.iterdir()) == []  # nothing written where it ran
    (run,) = [d for d in store.iterdir() if d.is_dir()]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["lab_version"] == sha
    rows = [json.loads(line) for line in (run / "hooks.jsonl").read_text().splitlines()]
    assert any(r["hook"] == "raw_tp" and r["status"] == "ok" for r in rows)
    after = sorted(p.relative_to(purelib) for p in (Path(purelib) / "lab").rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # the BPF build went to the cache, not into the package
