"""Lab state faults without booting a guest: stale and corrupt state.json, the per-lab lock, a
running lab of another size, per-checkout scoping, lab.forget, host key and known_hosts messages,
a file that is no kernel package, playbook vm: types. Harmless sleepers in their own sessions
stand in for a lab's VM (or for a would-be victim of a stale session id); every one is killed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from lab.core.config import ROOT, LabError, Paths, checkout_key
from lab.guest import labstate, remote, vm
from lab.kernels import catalog as kernels
from lab.run import labs, playbooks
from lab.run.labs import Lab
from lab.run.playbooks import VmSpec

INV = str(Path(sys.executable).with_name("inv"))


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def paths(cache: Path) -> Paths:
    return Paths(cache=cache)


@pytest.fixture
def sleepers():
    """Start `setsid sleep 300` processes (each leads its own session); all killed afterwards."""
    procs: list[subprocess.Popen] = []

    def start() -> int:
        p = subprocess.Popen(["setsid", "sleep", "300"], stdin=subprocess.DEVNULL)
        procs.append(p)
        deadline = time.monotonic() + 5
        while vm.cmdline(p.pid) != ["sleep", "300"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert vm.session_of(p.pid) == p.pid  # setsid did not fork: the pid leads its session
        return p.pid

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def inv(*args: str, cache: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """A lab task as a user runs it (labctl's invoke), with its cache under the test's tmp dir."""
    env = dict(os.environ, LAB_CACHE=str(cache))
    return subprocess.run([INV, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def fake_state(lab: Lab, pid: int, *, start_shift: int = 0, boot_id: str | None = None,
               cpus: int = 2, memory: str = "2G", boot_seconds: float | None = 1.5) -> labstate.LabState:
    """A state whose VM is the process `pid` (a sleeper): its identity matches unless shifted."""
    me = vm.ProcId.of(pid)
    assert me is not None
    rec = vm.ProcId(me.pid, me.start_time + start_shift, me.cmdline)
    st = labstate.LabState(
        name=lab.name, kernel={"release": "6.12.0-test", "source": "test", "vmlinuz": "/nonexistent"},
        image="test", image_recipe_hash="0" * 12, accelerator="tcg", accelerator_why="test", port=1,
        sid=pid, qemu_pid=pid, cpus=cpus, memory=memory, started=time.time(), boot_seconds=boot_seconds,
        boot_id=vm.boot_id() if boot_id is None else boot_id, procs=[rec.to_json()], checkout=str(ROOT))
    lab.dir.mkdir(parents=True, exist_ok=True)
    lab.save(st)
    return st


def alive(pid: int) -> bool:
    return vm.alive(pid)


# identity


def test_proc_identity_reads_start_time_and_cmdline(sleepers):
    pid = sleepers()
    me = vm.ProcId.of(pid)
    assert me and me.cmdline == ("sleep", "300") and me.start_time > 0
    assert me.check() is None
    assert "another process" in (vm.ProcId(pid, me.start_time + 1, me.cmdline).check() or "")
    assert "now runs" in (vm.ProcId(pid, me.start_time, ("qemu-system-x86_64",)).check() or "")
    assert vm.boot_id() == Path("/proc/sys/kernel/random/boot_id").read_text().strip()


@pytest.mark.parametrize("fault", ["start_time", "boot_id"])
def test_stale_session_id_is_reported_and_never_signalled(cache, paths, sleepers, fault):
    """The issue's portrace case: a state holding a session id that now belongs to another
    session (here a sleeper in its own session): lab.down reports it stale, removes it and the
    would-be victim lives on."""
    victim = sleepers()
    lab = Lab("portrace", paths)
    if fault == "start_time":
        fake_state(lab, victim, start_shift=-7)
    else:
        fake_state(lab, victim, boot_id="00000000-0000-0000-0000-000000000000")
    res = inv("lab.down", "--kernel", "portrace", cache=cache)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "stale state" in out and "Nothing was signalled" in out and "Traceback" not in out
    assert ("another process" in out) if fault == "start_time" else ("rebooted" in out)
    time.sleep(0.2)
    assert alive(victim)
    assert not lab.state_file.exists() and lab.state() is None


def test_old_state_without_identity_is_stale_not_trusted(paths, sleepers):
    victim = sleepers()
    lab = Lab("old", paths)
    st = fake_state(lab, victim)
    d = st.to_json()
    del d["boot_id"], d["procs"]
    lab.state_file.write_text(json.dumps(d))
    msgs: list[str] = []
    assert lab.running() is None
    assert lab.down(log=msgs.append) is False
    assert "records no process identity" in msgs[-1] and alive(victim)


def test_a_verified_lab_is_stopped_and_an_exited_one_just_cleaned(paths, sleepers):
    pid = sleepers()
    lab = Lab("real", paths)
    st = fake_state(lab, pid)
    assert lab.running() is not None
    msgs: list[str] = []
    assert lab.down(log=msgs.append) is True
    assert "stopped" in msgs[-1] and not lab.state_file.exists()
    assert not alive(pid)  # vm.stop waits until the session is gone
    lab.save(st)  # the same state again: its process has exited, so it is cleaned, nothing signalled
    assert lab.inspect().kind == "exited"
    msgs.clear()
    assert lab.down(log=msgs.append) is False and "was not running" in msgs[-1]
    assert not lab.state_file.exists()


def test_corrupt_state_is_reported_and_down_all_goes_on(cache, paths, sleepers):
    """a: not JSON; b: a running lab (its sleeper must be stopped); c: JSON but not a state; d: stale."""
    names = ["a-corrupt", "b-up", "c-wrong", "d-stale"]
    for n in names:
        Lab(n, paths).dir.mkdir(parents=True)
    up, victim = sleepers(), sleepers()
    fake_state(Lab("b-up", paths), up)

    def break_them() -> None:
        Lab("a-corrupt", paths).state_file.write_text('{"name": "a-corrupt", "sid": 12')
        Lab("c-wrong", paths).state_file.write_text(json.dumps({"name": "c", "sid": "twelve"}))
        fake_state(Lab("d-stale", paths), victim, start_shift=3)

    break_them()
    status = inv("lab.status", cache=cache)
    out = status.stdout + status.stderr
    assert status.returncode == 0 and "Traceback" not in out, out
    assert "b-up       up" in out and "lab a-corrupt: corrupt state" in out and "lab d-stale: stale state" in out
    assert [n for n in names if Lab(n, paths).state_file.exists()] == ["b-up"]  # reported and cleaned
    break_them()
    res = inv("lab.down", "--all", cache=cache)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Traceback" not in out, out
    assert "lab a-corrupt: corrupt state" in out and "not JSON" in out
    assert "lab b-up: stopped" in out
    assert "lab c-wrong: corrupt state" in out and "not a lab state" in out
    assert "lab d-stale: stale state" in out
    assert alive(victim)
    deadline = time.monotonic() + 5
    while alive(up) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(up)
    assert not any(Lab(n, paths).state_file.exists() for n in names)


# the per-lab lock

HOLDER = """
import sys
from lab.core.config import Paths
from lab.run.labs import Lab
from tests.unit.test_labstate import fake_state
lab = Lab(sys.argv[1], Paths())
with lab.lock("lab.up", log=print):
    print("locked", flush=True)
    sys.stdin.readline()  # 'booting' until the test says so
    fake_state(lab, int(sys.argv[2]), boot_seconds=12.5)
"""


def test_second_lab_up_waits_for_the_first_and_reports_it_up(cache, sleepers):
    """Process A holds the lab's lock as a booting lab.up does, then records its (sleeper) VM;
    lab.up in process B waits for it, says so, and reports the lab up (no TypeError)."""
    vmpid = sleepers()
    env = dict(os.environ, LAB_CACHE=str(cache))
    a = subprocess.Popen([sys.executable, "-c", HOLDER, "locky", str(vmpid)], cwd=ROOT, env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    b = None
    try:
        assert a.stdout and a.stdout.readline().strip() == "locked"
        busy = inv("lab.status", cache=cache)
        assert busy.returncode == 0 and "locky" in busy.stdout and "BUSY" in busy.stdout, busy.stdout
        assert f"lab.up (pid {a.pid}) holds its lock" in busy.stdout
        b = subprocess.Popen([INV, "lab.up", "--kernel", "locky", "--memory", "2048M"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert b.stdout
        first = b.stdout.readline()
        assert f"lab locky: waiting for lab.up (pid {a.pid}) to finish" in first
        assert b.poll() is None  # still waiting
        assert a.stdin
        a.stdin.write("done\n")
        a.stdin.close()
        assert a.wait(timeout=30) == 0
        out = b.stdout.read()
        assert b.wait(timeout=60) == 0 and "Traceback" not in out, out
    finally:
        for p in (a, b):
            if p and p.poll() is None:
                p.kill()
                p.wait()
    assert "lab locky is already up" in out and "boot-to-SSH 12.5 s" in out
    assert alive(vmpid)  # B used the lab; it did not stop or reboot it
    Lab("locky", Paths(cache=cache)).down(log=lambda m: None)


def test_status_does_not_wait_for_a_busy_lab(paths, sleepers):
    lab = Lab("busy", paths)
    fake_state(lab, sleepers(), start_shift=1)  # stale, but busy labs are left alone
    with lab.lock("lab.up", log=print):
        insp = lab.checked(log=print)
        assert insp.kind == "busy" and "lab.up" in insp.why
        assert lab.state_file.exists()
    assert lab.checked(log=lambda m: None).kind == "stale" and not lab.state_file.exists()


# size of a running lab


def test_lab_up_of_another_size_refuses_and_says_how(cache, paths, sleepers):
    lab = Lab("sized", paths)
    pid = sleepers()
    fake_state(lab, pid, cpus=2, memory="2G")
    res = inv("lab.up", "--kernel", "sized", "--cpus", "4", "--memory", "4G", cache=cache)
    out = res.stdout + res.stderr
    assert res.returncode == 1 and "Traceback" not in out
    assert "lab sized is up with 2 vCPUs, 2G memory, but lab.up asks for 4 vCPUs, 4G memory" in out
    assert "./labctl lab.down --kernel sized" in out and "--cpus 4 --memory 4G" in out
    # the same through the bench path: a playbook whose vm differs
    with pytest.raises(LabError, match=r"the playbook's vm: asks for 1 vCPU, 2G memory.*lab.down --kernel sized"):
        with labs.open_target("sized", VmSpec(cpus=1, memory="2G"), paths):
            pass
    # same size in other words is the same lab, used as it is
    st, booted = lab.ensure_up("sized", VmSpec(cpus=2, memory="2048M"), log=lambda m: None)
    assert not booted and st.sid == pid and alive(pid)
    lab.down(log=lambda m: None)


def test_bad_cpus_or_memory_on_the_command_line_is_one_message(cache):
    res = inv("lab.up", "--kernel", "6.12", "--cpus", "two", "--memory", "lots", cache=cache)
    assert res.returncode == 2 and "cpus must be a positive integer" in res.stderr and "like 2G" in res.stderr
    assert not (cache / "labs").exists()


# per-checkout scope


def test_labs_are_scoped_to_their_checkout(cache, tmp_path, sleepers):
    """Another checkout's lab (same kernel name, same cache) is invisible to this one's lab.status and
    lab.down --all, and both can hold a lab of the same kernel at once."""
    other = Paths(root=tmp_path / "other-clone", cache=cache)
    mine = Paths(cache=cache)
    assert other.labs != mine.labs and other.labs.parent == mine.labs.parent == cache / "labs"
    assert mine.labs.name == checkout_key(ROOT) and mine.kernels == other.kernels == cache / "kernels"
    theirs = sleepers()
    fake_state(Lab("6.12", other), theirs)
    ours = sleepers()
    fake_state(Lab("6.12", mine), ours)
    assert [lab.name for lab in labs.all_labs(other)] == ["6.12"]
    status = inv("lab.status", cache=cache)
    assert str(Lab("6.12", mine).dir) in status.stdout and str(other.labs) not in status.stdout
    res = inv("lab.down", "--all", cache=cache)
    assert res.returncode == 0 and "lab 6.12: stopped" in res.stdout
    time.sleep(0.2)
    assert alive(theirs) and Lab("6.12", other).running() is not None
    Lab("6.12", other).down(log=lambda m: None)
    assert not alive(theirs) or vm.cmdline(theirs) is None


# lab.forget


def test_forget_drops_a_stopped_lab_and_refuses_a_running_one(cache, paths, sleepers):
    lab = Lab("forgettable", paths)
    fake_state(lab, sleepers())
    remote.make_keypair(lab.dir)
    lab.known_hosts.write_text("[127.0.0.1]:1 ssh-ed25519 AAAA\n")
    res = inv("lab.forget", "--kernel", "forgettable", cache=cache)
    assert res.returncode == 1 and "is up: stop it first" in res.stderr and lab.key.exists()
    lab.down(log=lambda m: None)
    res = inv("lab.forget", "--kernel", "forgettable", cache=cache)
    assert res.returncode == 0 and "forgot" in res.stdout and not lab.dir.exists()


# host keys and known_hosts


def _key(tmp_path: Path, name: str) -> paramiko.PKey:
    f = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(f)], check=True)
    return paramiko.Ed25519Key.from_private_key_file(str(f))


def test_host_key_mismatch_is_said_in_words(tmp_path):
    pinned, presented = _key(tmp_path, "a"), _key(tmp_path, "b")
    e = paramiko.BadHostKeyException("[127.0.0.1]:2222", presented, pinned)
    msg = remote.host_key_problem(e, "127.0.0.1", 2222, tmp_path / "known_hosts")
    assert msg and "does not match" in msg and presented.fingerprint in msg and pinned.fingerprint in msg
    assert "[127.0.0.1]:2222" in msg
    missing = paramiko.SSHException("Server '[127.0.0.1]:2222' not found in known_hosts")
    assert "no usable host key" in (remote.host_key_problem(missing, "127.0.0.1", 2222, tmp_path / "k") or "")


@pytest.mark.parametrize("content", ["dir", "[127.0.0.1]:2222 ssh-ed25519 AAAA!!not-base64\n", b"\xff\xfe\x00"])
def test_unreadable_known_hosts_is_one_message(tmp_path, content):
    kh = tmp_path / "known_hosts"
    if content == "dir":
        kh.mkdir()
    elif isinstance(content, bytes):
        kh.write_bytes(content)
    else:
        kh.write_text(content)
    with pytest.raises(LabError, match=f"cannot read the known_hosts file {kh}"):
        remote.connect("127.0.0.1", 2222, None, kh)


def test_unreachable_ssh_target_is_one_message(tmp_path, monkeypatch):
    kh = tmp_path / "known_hosts"
    kh.mkdir()
    monkeypatch.setenv("LAB_SSH_KNOWN_HOSTS", str(kh))
    with pytest.raises(LabError, match="cannot run commands on ssh://root@127.0.0.1:1: cannot read the known_hosts"):
        labs.remote_machine("ssh://root@127.0.0.1:1", Paths())


# kernels and playbooks


def test_random_file_named_deb_is_refused_and_leaves_nothing(tmp_path, cache, paths):
    x = tmp_path / "x.deb"
    x.write_bytes(os.urandom(4096))
    with pytest.raises(LabError, match=r"x.deb is not a Debian package that can be unpacked: dpkg-deb"):
        kernels.resolve(str(x), paths)
    assert not paths.kernels.exists() or not any(paths.kernels.rglob("*"))
    res = inv("lab.up", "--kernel", str(x), cache=cache)
    out = res.stdout + res.stderr
    assert res.returncode == 1 and "is not a Debian package" in out and "Traceback" not in out
    assert "CalledProcessError" not in out
    leftovers = [p for p in cache.rglob("*") if p.name.endswith(".tmp") or p.name == "x.deb"]
    assert leftovers == [] and not (Paths(cache=cache).kernels / "local").exists()
    assert not Lab("x.deb", paths).dir.exists()  # no lab directory left by a boot that never started


def test_deb_without_a_kernel_image_leaves_nothing(tmp_path, paths):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text("Package: junk\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\n"
                                         "Description: t\n")
    (root / "usr/share/junk").mkdir(parents=True)
    deb = tmp_path / "junk.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "-b", str(root), str(deb)], check=True, capture_output=True)
    with pytest.raises(LabError, match="hold no kernel image"):
        kernels.resolve(str(deb), paths)
    assert not paths.kernels.exists() or not any(paths.kernels.rglob("*"))


@pytest.mark.parametrize("vm_yaml, says", [
    ('{cpus: "two"}', "cpus must be a positive integer, not 'two'"),
    ("{cpus: 0}", "cpus must be a positive integer, not 0"),
    ("{cpus: true}", "cpus must be a positive integer, not True"),
    ('{memory: "2 GB"}', "memory must be a size like 2G or 512M, not '2 GB'"),
    ("{memory: [2, G]}", "memory must be a size like 2G or 512M"),
    ("{cpus: 2, disk: 4G}", "unknown key(s) in 'vm': disk"),
    ("[2, 2G]", "'vm' must be a mapping"),
])
def test_playbook_vm_types_are_checked_on_load(tmp_path, vm_yaml, says):
    pb = tmp_path / "pb.yaml"
    pb.write_text(f"vm: {vm_yaml}\nsuites:\n  hooks: {{trials: 2}}\n")
    with pytest.raises(LabError) as e:
        playbooks.load(str(pb))
    assert f"playbook {pb}" in str(e.value) and says in str(e.value)


def test_playbook_vm_sizes_in_qemu_words(tmp_path):
    pb = tmp_path / "pb.yaml"
    pb.write_text("vm: {cpus: 3, memory: 1536}\nsuites:\n  hooks: {trials: 2}\n")
    spec = playbooks.load(str(pb)).vm
    assert spec == VmSpec(cpus=3, memory="1536M") and spec.same_size(VmSpec(3, "1536m"))
    assert playbooks.memory_bytes("2G") == playbooks.memory_bytes("2048M") == 2 << 30
