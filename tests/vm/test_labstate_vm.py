"""Lab state with a real guest: a flipped byte in the pinned host key is refused in words by
lab.ssh and bench.* (no run directory left), a running lab of another size is refused, lab.down +
lab.up re-pins, and two checkouts run a lab of the same kernel at once. Every lab is stopped."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.core.config import ROOT, Paths
from lab.guest import vm
from lab.run.labs import Lab, all_labs
from lab.run.playbooks import VmSpec

pytestmark = pytest.mark.vm

SPEC = VmSpec(cpus=2, memory="1G")
INV = str(Path(sys.executable).with_name("inv"))
QUIET = print if os.environ.get("LAB_TEST_VERBOSE") else (lambda m: None)


def inv(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([INV, *args], cwd=ROOT, env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=300)


def flip_key_byte(known_hosts: Path) -> None:
    """Flip one bit in the last byte of the pinned key (still a well-formed ed25519 key, just another one)."""
    host, keytype, data = known_hosts.read_text().split()[:3]
    blob = bytearray(base64.b64decode(data))
    blob[-1] ^= 0x01
    known_hosts.write_text(f"{host} {keytype} {base64.b64encode(bytes(blob)).decode()}\n")


def test_flipped_host_key_is_refused_in_words_and_repinned_by_down_up(labs, tmp_path):
    lab = Lab("test-hostkey", Paths())
    labs.append(lab)
    st = lab.up("6.12", SPEC, log=QUIET)
    conn = lab.connection()
    assert conn.run("true", hide=True).ok
    conn.close()

    # lab.ssh is the system's ssh: stdin, the command's output and its exit code pass through
    res = subprocess.run([INV, "lab.ssh", "--kernel", "test-hostkey", "--", "cat; exit 3"], cwd=ROOT, input="hello\n",
                         capture_output=True, text=True, timeout=120)
    assert (res.returncode, res.stdout) == (3, "hello\n"), res.stderr

    # the running lab of another size: refused, with how to restart
    res = inv("lab.up", "--kernel", "test-hostkey", "--cpus", "1", "--memory", "1G")
    assert res.returncode == 1 and "is up with 2 vCPUs, 1G memory, but lab.up asks for 1 vCPU, 1G memory" in res.stderr
    assert "lab.down --kernel test-hostkey" in res.stderr

    flip_key_byte(lab.known_hosts)
    res = inv("lab.ssh", "--kernel", "test-hostkey", "--", "true")
    out = res.stdout + res.stderr
    assert res.returncode == 1 and "Traceback" not in out and "paramiko" not in out, out
    assert f"the host key of [127.0.0.1]:{st.port} does not match the one pinned in {lab.known_hosts}" in out
    assert "no longer holds the key pinned from the image at lab.up" in out
    assert "lab.down --kernel test-hostkey" in out and "lab.forget --kernel test-hostkey" in out

    # bench.* on that lab: the same message before anything is written, no run directory
    pb = tmp_path / "pb.yaml"
    pb.write_text("vm: {cpus: 2, memory: 1G}\nsuites:\n  hooks: {trials: 2, ops: 500, hooks: [tracepoint]}\n")
    results = tmp_path / "results"
    res = inv("bench.hooks", "--kernel", "test-hostkey", "--playbook", str(pb), LAB_RESULTS=str(results))
    out = res.stdout + res.stderr
    assert res.returncode == 1 and "Traceback" not in out and "does not match the one pinned" in out, out
    assert not results.exists() or list(results.iterdir()) == []
    assert lab.running() is not None  # bench did not boot it, so it did not stop it

    # re-pin as the message says: lab.down, lab.up
    assert lab.down(log=QUIET) is True
    st = lab.up("6.12", SPEC, log=QUIET)
    conn = lab.connection()
    assert conn.run("true", hide=True).ok
    conn.close()

    # another checkout's lab of the same kernel and name runs at the same time, unseen by this one's
    other = Lab("test-hostkey", Paths(root=tmp_path / "other-clone"))
    labs.append(other)
    ost = other.up("6.12", SPEC, log=QUIET)
    assert ost.port != st.port and other.dir != lab.dir
    assert other.connection().run("uname -r", hide=True).stdout.strip() == st.release
    assert lab.running() and other.running()
    assert other.dir not in [x.dir for x in all_labs()]
    for x in (other, lab):
        sid = x.running().sid  # type: ignore[union-attr]
        assert x.down(log=QUIET) is True and vm.session_pids(sid) == []
    assert not (Paths(root=tmp_path / "other-clone").labs / "test-hostkey" / "state.json").exists()
