"""The event-count TCG plugin, on the host, no guest: it builds with gcc (cached by source hash),
it calls only what this QEMU exports, QEMU 7.2 loads it (no machine, no CPU: only its install and API
version check run), and its opcode classifier names the classes of known instruction bytes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from lab.guest import tcgplugin

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which(tcgplugin.QEMU) is None,
                                reason="needs gcc and qemu-system-x86_64")

# instruction bytes -> the classes the plugin counts them in (besides "insn")
KNOWN = {
    "9c": {"pushf"}, "9d": {"popf"}, "48cf": {"iret"}, "cf": {"iret"},
    "f0480fc111": {"lock"},  # lock xadd %rdx,(%rcx)
    "f00fb111": {"lock"},  # lock cmpxchg
    "488701": {"lock"},  # xchg %rax,(%rcx): locked without the prefix
    "4887c8": set(),  # xchg %rcx,%rax: registers, not locked
    "0fa2": {"cpuid"}, "0f30": {"wrmsr"}, "0f01f8": {"swapgs"},
    "0faee8": {"fence"}, "0faef0": {"fence"}, "0faef8": {"fence"}, "0fae38": set(),  # clflush-class, not a fence
    "0f05": {"syscall"}, "480f07": {"sysret"}, "cc": {"int3"},
    "e800000000": {"call"}, "ffd0": {"call", "indirect"}, "41ffd3": {"call", "indirect"},
    "ff2500000000": {"indirect"}, "41ffe3": {"indirect"}, "c3": {"ret"}, "f3c3": {"ret"}, "c20800": {"ret"},
    "0f1f440000": set(), "4889c8": set(), "c5f877": set(),  # nop, mov, vzeroupper (VEX)
    "66900f": set(),
}


def test_plugin_builds_once_and_needs_only_what_qemu_exports(tmp_path):
    p = tcgplugin.build(tmp_path)
    assert p.api_version == 1 and p.qemu_version.startswith("QEMU emulator version")
    assert len(p.sha256) == 64 and p.sha256[:16] in p.path
    mtime = os.stat(p.path).st_mtime_ns
    assert tcgplugin.build(tmp_path).path == p.path and os.stat(p.path).st_mtime_ns == mtime  # cached
    needed = tcgplugin.needed(p.path)
    assert {"qemu_plugin_register_vcpu_tb_trans_cb", "qemu_plugin_insn_data", "qemu_plugin_reset"} <= needed
    assert needed <= tcgplugin.exported(shutil.which(tcgplugin.QEMU))
    syms = subprocess.run(["nm", "-D", "--defined-only", p.path], capture_output=True, text=True).stdout
    assert "qemu_plugin_install" in syms and "qemu_plugin_version" in syms
    assert p.manifest()["sha256"] == p.sha256 and "path" not in p.manifest()


def test_qemu_loads_it_and_its_api_version_matches(tmp_path):
    p = tcgplugin.build(tmp_path)
    log = tmp_path / "events.log"
    proc = subprocess.Popen([tcgplugin.QEMU, "-M", "none", "-display", "none", "-monitor", "none", "-serial", "none",
                             "-accel", "tcg", "-icount", "shift=0", "-S", "-plugin", p.qemu_opts(log).split()[1]],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (log.exists() and log.read_text().endswith("\n")):
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0].decode(errors="replace")
    header = log.read_text().split("\n")[0] if log.exists() else ""
    assert header.startswith("# eventcount 1 counters insn pushf popf lock"), out
    assert "ret_miss" in header and "exc_int3" in header


def test_opcode_classifier_on_known_bytes(tmp_path):
    prog = tcgplugin.classifier(tmp_path)
    out = subprocess.run([str(prog), *KNOWN], capture_output=True, text=True, check=True).stdout.splitlines()
    got = {ln.split()[0]: set(ln.split()[1:]) for ln in out}
    for hexbytes, classes in KNOWN.items():
        assert got[hexbytes] == classes | {"insn"}, hexbytes


def test_markers_are_recognised_and_are_nops_elsewhere(tmp_path):
    prog = tcgplugin.classifier(tmp_path)
    out = subprocess.run([str(prog), "0f1f80307a424c", "0f1f80417a424c", "0f1f80027a424c", "0f1f80307a424d"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert [ln.split()[1] for ln in out] == ["marker:30", "marker:41", "marker:02", "insn"]  # wrong magic: a nop


def test_the_plugin_is_off_unless_icount(monkeypatch):
    assert not tcgplugin.wanted("kvm", {"LAB_EVENTS": "on"}) and not tcgplugin.wanted("tcg", {"LAB_EVENTS": "on"})
    assert tcgplugin.wanted("icount", {"LAB_EVENTS": "on"}) and not tcgplugin.wanted("icount", {"LAB_EVENTS": "off"})
    with pytest.raises(Exception, match="use on or off"):
        tcgplugin.wanted("icount", {"LAB_EVENTS": "maybe"})
