"""The Debian packages the lab needs: one list (lab/data/debian-packages.txt) that ./labctl installs
and the `ebpf-lab` console script checks, naming every missing one in one message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab import cli

ROOT = Path(__file__).resolve().parents[2]
LIST = ROOT / "lab" / "data" / "debian-packages.txt"
# a stand-in dpkg-query: every package installed except those named in $MISSING
DPKG_QUERY = """#!/bin/sh
shift 3
for p in "$@"; do
  case " $MISSING " in *" $p "*) echo "dpkg-query: no packages found matching $p" >&2 ;;
                      *) echo "$p install ok installed" ;; esac
done
"""


def _packages() -> list[str]:
    return [w[0] for w in map(str.split, LIST.read_text().splitlines()) if w and w[0][0] != "#" and w[0] != "dev"]


def test_one_list_for_labctl_and_the_package():
    labctl = (ROOT / "labctl").read_text()
    assert 'PKG_LIST="$HERE/lab/data/debian-packages.txt"' in labctl and "qemu-system-x86" not in labctl
    assert {"qemu-system-x86", "mmdebstrap", "clang", "bpftool", "chromium"} <= set(_packages())
    assert "data/*.txt" in (ROOT / "pyproject.toml").read_text()  # shipped in the wheel


def test_missing_packages_named_in_one_message(tmp_path, monkeypatch, capsys):
    (tmp_path / "dpkg-query").write_text(DPKG_QUERY)
    (tmp_path / "dpkg-query").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setenv("MISSING", "clang chromium")
    assert cli.missing_debian_packages() == ["clang", "chromium"]
    cli.warn_missing(["ebpf-lab", "results.list"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing Debian packages" in err and "apt-get install clang chromium" in err
    for argv in (["ebpf-lab"], ["ebpf-lab", "--list"], ["ebpf-lab", "--version"]):
        cli.warn_missing(argv)  # nothing to run: no check
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("MISSING", "")
    cli.warn_missing(["ebpf-lab", "results.list"])
    assert capsys.readouterr().err == ""


def test_no_dpkg_query_says_it_cannot_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.missing_debian_packages() is None
    cli.warn_missing(["ebpf-lab", "results.list"])
    assert "cannot check the Debian packages" in capsys.readouterr().err


def test_labctl_runs_without_the_check_the_console_script_with_it():
    """./labctl installs what is missing itself (lab.cli as it runs it says nothing); ebpf-lab checks
    before a task (here on a PATH without dpkg-query: it says it cannot check, and runs the task)."""
    env = {"PATH": "/nonexistent"}
    as_labctl = subprocess.run([sys.executable, "-m", "lab.cli", "kernels.matrix", "--playbook", "nightly"],
                               capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert as_labctl.returncode == 0 and as_labctl.stderr == "", as_labctl.stderr
    as_script = subprocess.run([sys.executable, "-c", "from lab.cli import main; main(['ebpf-lab', 'kernels.matrix', "
                                "'--playbook', 'nightly'])"], capture_output=True, text=True, cwd=ROOT, env=env,
                               timeout=120)
    assert as_script.returncode == 0 and as_script.stdout == as_labctl.stdout
    assert as_script.stderr.startswith("ebpf-lab: cannot check the Debian packages"), as_script.stderr
