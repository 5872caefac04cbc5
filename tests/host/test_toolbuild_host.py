"""Newer tool builds for real, on this machine: Debian 13's libbpf-tools extracted from the archive
(through the lab's apt configuration) with its own glibc and loader, started on this Debian 12
host whose glibc is too old for it, and measured by the agent under load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lab.agent import schema
from lab.core.config import ROOT, Paths
from lab.guest import toolbuilds as toolbuild

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def trixie(tmp_path_factory):
    paths = Paths(root=tmp_path_factory.mktemp("checkout"), cache=Paths().cache)
    (build,) = toolbuild.prepare({"tool_build": "trixie"}, paths, log=lambda m: None)
    return build, paths


def test_extracted_build_has_the_six_tools_and_only_its_own_libraries(trixie):
    build, _ = trixie
    meta = json.loads((build.dir / "build.json").read_text())
    assert meta["suite"] == "trixie" and meta["package"] == "libbpf-tools" and build.label.endswith("(trixie)")
    assert set(meta["tools"]) == {"runqlat", "cpudist", "cachestat", "biolatency", "vfsstat", "tcplife"}
    assert {"libc.so.6", "libelf.so.1", "libz.so.1", "ld-linux-x86-64.so.2"} <= set(meta["libs"])
    assert sorted(p.name for p in (build.dir / "lib").iterdir()) == sorted(meta["libs"])
    assert meta["libs"]["libc.so.6"].startswith("libc6 2.")


def test_its_binaries_need_a_newer_glibc_than_bookworm_so_they_run_with_their_own(trixie):
    build, _ = trixie
    direct = subprocess.run([str(build.dir / "bin" / "runqlat"), "--help"], capture_output=True, text=True)
    own = subprocess.run(toolbuild.command(build.dir, "runqlat") + ["--help"], capture_output=True, text=True)
    assert own.returncode == 0 and "Usage: runqlat" in own.stdout
    if direct.returncode != 0:  # on a bookworm host: glibc 2.36 < the 2.38 they were linked against
        assert "GLIBC_2.3" in direct.stderr


def agent(paths, params):
    proc = subprocess.run([sys.executable, "-m", "lab.agent", "--suite", "tools", "--bpf-dir",
                           str(paths.build / "bpf"), "--params", json.dumps(params)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {r["tool"]: r for r in map(json.loads, proc.stdout.splitlines())}


def test_the_agent_measures_a_tool_from_the_newer_build_and_says_so(trixie):
    build, paths = trixie
    rows = agent(paths, {"tools": ["runqlat"], "tool_build": "trixie", "trials": 1, "seconds": 1,
                         "proof_seconds": 1, "load": ["cpu"]})
    r = rows["runqlat"]
    assert schema.validate(r) == []
    assert r["status"] == "ok" and r["events"] > 0, r["reason"]
    assert r["tool_build"] == build.label and r["tool_build_refused"] == []


def test_auto_tries_the_newer_builds_when_the_packaged_one_is_refused(trixie):
    _, paths = trixie
    rows = agent(paths, {"tools": ["cachestat"], "trials": 1, "seconds": 1, "proof_seconds": 1, "load": ["cpu"]})
    r = rows["cachestat"]
    tried = [t["build"] for t in r["tool_build_refused"]]
    if r["status"] == "ok":  # some build attached here: the ones before it were refused
        assert r["tool_build"] and r["tool_build"] not in tried
    else:  # this host refuses all of them (no kprobes, no fentry): each build's refusal is kept
        assert r["status"] == "unsupported" and r["tool_build"] is None
        assert tried[-1].endswith("(trixie)") and len(tried) == 2
        assert all(t["build"] + ": " in r["reason"] for t in r["tool_build_refused"])
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_tool(p)]


def _is_tool(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"toolbuilds/trixie/bin/" in f.read()
    except OSError:
        return False
