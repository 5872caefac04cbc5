"""Which build of a tool runs (lab/agent/tools/builds.py) and the playbook's tool_build parameter,
with fake builds and a fake start; the real extraction and runs are in test_toolbuild_host.py
(host) and test_toolbuild_vm.py (a 6.12 guest)."""

from __future__ import annotations

import json
import subprocess

import pytest

from lab.agent.tools import builds as agent_tb
from lab.agent.tools import suite as tools
from lab.core.config import LabError
from lab.guest import toolbuilds as toolbuild
from lab.kernels.debarchive import Suite
from lab.run import playbooks


class Refused(Exception):
    pass


class FakeBuild:
    def __init__(self, label, has=True):
        self.label, self.has = label, has

    def argv(self, tool):
        return [self.label, tool] if self.has else None

    def missing(self, tool):
        return f"{tool} is not in this build"


def chooser(*builds):
    c = agent_tb.Chooser("auto", "/nonexistent", None)
    c.builds = list(builds)
    return c


def starter(refusing):
    started = []

    def start(argv):
        started.append(argv[0])
        if argv[0] in refusing:
            raise Refused(f"{argv[0]}: failed to attach kprobe account_page_dirtied")
        return f"proc of {argv[0]}"
    return start, started


def test_auto_falls_back_to_the_first_newer_build_the_kernel_accepts_and_keeps_it():
    c = chooser(FakeBuild("bookworm"), FakeBuild("trixie"), FakeBuild("unstable"))
    start, started = starter({"bookworm"})
    assert c.start("cachestat", start, Refused) == "proc of trixie"
    assert c.start("cachestat", start, Refused) == "proc of trixie"  # the trials run the same build
    assert started == ["bookworm", "trixie", "trixie"]
    f = c.fields("cachestat")
    assert f["tool_build"] == "trixie"
    assert f["tool_build_refused"] == [{"build": "bookworm",
                                        "reason": "bookworm: failed to attach kprobe account_page_dirtied"}]


def test_packaged_build_that_attaches_is_the_only_one_tried():
    c = chooser(FakeBuild("bookworm"), FakeBuild("trixie"))
    start, started = starter(set())
    c.start("runqlat", start, Refused)
    assert started == ["bookworm"] and c.fields("runqlat") == {"tool_build": "bookworm", "tool_build_refused": []}


def test_every_build_refused_gives_each_reason_and_no_build():
    c = chooser(FakeBuild("bookworm"), FakeBuild("trixie", has=False), FakeBuild("unstable"))
    start, _ = starter({"bookworm", "unstable"})
    with pytest.raises(Refused) as e:
        c.start("vfsstat", start, Refused)
    msg = str(e.value)
    assert "bookworm: bookworm: failed" in msg and "trixie: vfsstat is not in this build" in msg
    assert "unstable: unstable: failed" in msg
    f = c.fields("vfsstat")
    assert f["tool_build"] is None and [r["build"] for r in f["tool_build_refused"]] == ["bookworm", "trixie",
                                                                                        "unstable"]


def test_a_single_refusal_keeps_its_text_as_is():
    c = chooser(FakeBuild("bookworm"))
    start, _ = starter({"bookworm"})
    with pytest.raises(Refused, match="^bookworm: failed to attach"):
        c.start("cachestat", start, Refused)


def test_a_named_build_that_was_not_pushed_is_refused_with_why(tmp_path):
    c = agent_tb.Chooser("trixie", "/usr/sbin", str(tmp_path))
    with pytest.raises(Refused, match="tool_build trixie: no such build was pushed"):
        c.start("cachestat", starter(set())[0], Refused)


def test_candidates_per_choice_and_bundled_builds_read_from_build_json(tmp_path):
    root = tmp_path / "toolbuilds" / "trixie"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "cachestat").write_text("")
    (root / "build.json").write_text(json.dumps({"package": "libbpf-tools", "version": "0.31.0+ds-7",
                                                 "suite": "trixie", "tools": {"cachestat": "cachestat-libbpf"}}))
    names = {c: [b.label for b in agent_tb.candidates(c, "/usr/sbin", str(tmp_path))]
             for c in ("auto", "packaged", "bookworm", "trixie", "unstable")}
    assert names["auto"][1:] == ["libbpf-tools 0.31.0+ds-7 (trixie)"]
    assert names["trixie"] == ["libbpf-tools 0.31.0+ds-7 (trixie)"]
    assert len(names["packaged"]) == len(names["bookworm"]) == 1 and names["unstable"] == []
    (build,) = agent_tb.candidates("trixie", "/usr/sbin", str(tmp_path))
    lib = str(root / "lib")
    assert build.argv("cachestat") == [lib + "/ld-linux-x86-64.so.2", "--inhibit-cache", "--library-path", lib,
                                       "--argv0", "cachestat", str(root / "bin" / "cachestat")]
    assert build.argv("runqlat") is None  # not in that build
    assert toolbuild.command(root, "cachestat") == build.argv("cachestat")  # host and agent agree


def test_tool_build_parameter_checked_before_anything_boots(tmp_path):
    assert tools.check({"tool_build": "trixie"}) == []
    assert any("tool_build must be one of auto" in p for p in tools.check({"tool_build": "sid"}))
    pb = tmp_path / "pb.yaml"
    pb.write_text("suites:\n  tools: {tools: [cachestat], tool_build: bullseye}\n")
    with pytest.raises(LabError, match="tool_build"):
        playbooks.load(str(pb))


def test_builds_the_host_prepares_per_choice():
    assert toolbuild.wanted("auto") == ("trixie", "unstable")
    assert toolbuild.wanted("trixie") == ("trixie",)
    assert toolbuild.wanted("packaged") == toolbuild.wanted("bookworm") == ()
    with pytest.raises(LabError):
        toolbuild.wanted("sid")


def test_auto_without_the_archive_goes_on_with_the_packaged_build(tmp_path, monkeypatch):
    from lab.core.config import Paths

    def unreachable(name, paths, log):
        raise LabError("apt-get update for Debian trixie failed")
    monkeypatch.setattr(toolbuild, "prepare_one", unreachable)
    said: list[str] = []
    paths = Paths(root=tmp_path, cache=tmp_path / "cache")
    assert toolbuild.prepare({"tool_build": "auto"}, paths, log=said.append) == []
    assert any("left out" in s for s in said)
    with pytest.raises(LabError, match="trixie failed"):
        toolbuild.prepare({"tool_build": "trixie"}, paths, log=said.append)


def test_dependency_closure_reads_depends_and_pre_depends(tmp_path, monkeypatch):
    records = {
        "libbpf-tools": "Package: libbpf-tools\nVersion: 1\n"
                        "Depends: libc6 (>= 2.38), libelf1t64 (>= 0.144) | libelf1\n",
        "libc6": "Package: libc6\nVersion: 2.41\nDepends: libgcc-s1\nPre-Depends: virtual-thing\n",
        "libelf1t64": "Package: libelf1t64\nVersion: 0.192\nDepends: libc6:any (>= 2.38), zlib1g\n",
        "libgcc-s1": "Package: libgcc-s1\nVersion: 14\n",
        "zlib1g": "Package: zlib1g\nVersion: 1:1.3\nDepends: libc6\n",
    }

    def fake_run(cmd, **kw):
        names = cmd[cmd.index("--no-all-versions") + 1:]
        out = "\n".join(records[n] for n in names if n in records)
        return subprocess.CompletedProcess(cmd, 0, out, "")
    monkeypatch.setattr(subprocess, "run", fake_run)
    s = Suite("trixie", tmp_path)
    assert s.closure("libbpf-tools") == ["libbpf-tools", "libc6", "libelf1t64", "libgcc-s1", "zlib1g"]
    assert s.show(["zlib1g"])["zlib1g"]["Version"] == "1:1.3"
    with pytest.raises(LabError, match="more than 2"):
        s.closure("libbpf-tools", limit=2)
