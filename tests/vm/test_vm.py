"""Real guests: boot 6.1 and 6.12 under QEMU (TCG here), run uname -r over fabric, stop them,
and check that nothing they started is left behind. Also a boot failure and a suite run."""

from __future__ import annotations

import os

import pytest
from conftest import parse, run_rows, screenshot

from lab.core.config import LabError, Paths
from lab.guest import vm
from lab.run.labs import Lab
from lab.run.playbooks import VmSpec
from tests.conftest import PLAYBOOKS

pytestmark = pytest.mark.vm

SPEC = VmSpec(cpus=2, memory="1G")


def _qemu_pids() -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    is_qemu = f.read().startswith("qemu-system")
                if is_qemu and vm.alive(int(entry)):  # a zombie awaiting its reaper is gone already
                    out.add(int(entry))
            except OSError:
                pass
    return out


def test_boot_6_1_and_6_12_at_once_run_uname_and_leave_nothing(labs):
    before = _qemu_pids()
    states = {}
    for alias in ("6.1", "6.12"):
        lab = Lab(f"test-{alias}", Paths())
        labs.append(lab)
        states[alias] = lab.up(alias, SPEC, log=lambda m: None)
    assert states["6.1"].port != states["6.12"].port
    for alias, lab in zip(("6.1", "6.12"), labs, strict=True):
        st = states[alias]
        assert st.accelerator in ("kvm", "icount", "tcg") and st.accelerator_why
        assert st.boot_seconds and st.boot_seconds > 0
        res = lab.connection().run("uname -r", hide=True)
        release = res.stdout.strip()
        assert release == st.release
        assert release.startswith(alias + ".") or release.startswith(alias + "-")
    sids = [s.sid for s in states.values()]
    for lab in labs:
        assert lab.down(log=lambda m: None) is True
    for sid in sids:
        assert vm.session_pids(sid) == []
    assert _qemu_pids() <= before


def test_boot_timeout_names_the_serial_log_and_stops_qemu(labs):
    lab = Lab("test-timeout", Paths())
    labs.append(lab)
    before = _qemu_pids()
    with pytest.raises(LabError) as e:
        lab.up("6.12", SPEC, timeout=2, log=lambda m: None)
    msg = str(e.value)
    assert str(lab.serial_log) in msg and "last lines" in msg and "no SSH within 2 s" in msg
    assert not lab.state_file.exists()  # no state left by a boot that failed
    assert vm.pids_with_cwd(lab.dir) == [] and _qemu_pids() <= before


def test_suites_run_in_a_6_12_guest_and_rows_come_back(tmp_path):
    """The hook, map and tool suites on a real 6.12 guest: every open-path hook fires exactly as often
    as it was triggered, every map type has update and lookup rows, each tool's programs ran; rows are
    marked tcg when emulated."""
    store, rows = run_rows(["hooks", "maps", "tools"], "6.12", str(PLAYBOOKS / "vm_playbook.yaml"),
                           tmp_path / "results", report=True)
    manifest = store.manifest()
    assert manifest["accelerator"] in ("kvm", "icount", "tcg") and manifest["kernel_release"].startswith("6.12")
    assert manifest["clocksource"] == "kvm-clock" if manifest["accelerator"] == "kvm" else manifest["clocksource"]
    hooks, maps = rows["hooks"], rows["maps"]
    assert all(r["accelerator"] == manifest["accelerator"] for r in hooks + maps)
    ok_hooks = {r["hook"] for r in hooks if r["status"] == "ok"}
    for hook in ("kprobe", "kretprobe", "tracepoint", "raw_tp", "tp_btf", "fentry", "fexit", "kprobe_multi"):
        assert hook in ok_hooks, f"{hook} has no ok row in the guest"
    for r in hooks:
        if r["status"] == "ok" and r.get("triggers") and r["hook"] in ok_hooks and r.get("events") is not None \
                and r["hook"] != "perf_event":
            assert r["events"] == r["triggers"], r
    ops = {(r["map_type"], r["operation"]) for r in maps if r["status"] == "ok"}
    for t in ("array", "percpu_array", "hash", "percpu_hash", "lru_hash", "lru_percpu_hash"):
        assert (t, "update") in ops and (t, "lookup") in ops and (t, "memory") in ops, t
    # the guest has kprobes and fentry: both tools load, run under stress-ng, and their programs fire
    tools = {r["tool"]: r for r in rows["tools"]}
    for name in ("runqlat", "vfsstat", "biolatency"):  # biolatency: block I/O on the lab's scratch disk
        assert tools[name]["status"] == "ok" and tools[name]["events"] > 0, tools[name]
        assert tools[name]["accelerator"] == manifest["accelerator"]
        assert tools[name]["disk"].startswith("ext4 on the lab's scratch disk /dev/vd")
    # what bench.all leaves: the run's report, with its plots and tables, as Chromium shows it
    html = store.path / "report.html"
    page = parse(html)
    assert len(page.imgs) >= 3 and page.tables >= 5 and {"claims", "hooks", "maps", "memlock"} <= page.ids
    assert all((store.path / src).exists() for src in page.imgs)
    assert "pipeline checked, timing not representative" in html.read_text() or manifest["accelerator"] != "tcg"
    shot = tmp_path / "report.png"
    screenshot(html, shot, tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_ssh_target_runs_the_agent_on_a_remote_machine(labs, tmp_path, monkeypatch):
    """ssh://user@host:port: the same agent over plain SSH (here the remote machine is a lab guest,
    reached with its key and pinned host key as a user would with their own)."""
    lab = Lab("test-ssh", Paths())
    labs.append(lab)
    st = lab.up("6.12", SPEC, log=lambda m: None)
    monkeypatch.setenv("LAB_SSH_KNOWN_HOSTS", str(lab.known_hosts))
    monkeypatch.setenv("LAB_SSH_KEY", str(lab.key))
    pb = tmp_path / "pb.yaml"
    pb.write_text("suites:\n  hooks: {trials: 2, stats_trials: 1, ops: 500, variants: [body], hooks: [tracepoint]}\n")
    store, rows = run_rows(["hooks"], f"ssh://root@127.0.0.1:{st.port}", str(pb), tmp_path / "results")
    m = store.manifest()
    assert m["engine"] == "ssh" and m["kernel_release"] == st.release and m["remote_virtualized"] is True
    ok = [r for r in rows["hooks"] if r["status"] == "ok" and r["hook"] == "tracepoint"]
    assert ok and all(r["kernel"] == st.release for r in ok)
    # a machine whose key is not pinned: refused before anything runs, saying how to pin it (issue 26)
    with pytest.raises(LabError, match="holds no host key for .* pin its key first: `ssh-keyscan -p"):
        monkeypatch.setenv("LAB_SSH_KNOWN_HOSTS", str(tmp_path / "empty_known_hosts"))
        (tmp_path / "empty_known_hosts").write_text("")
        run_rows(["hooks"], f"ssh://root@127.0.0.1:{st.port}", str(pb), tmp_path / "results2")


def test_map_suite_in_a_6_1_guest_follows_the_5_11_to_6_3_accounting(tmp_path):
    """6.1 is in the middle memlock regime (bpf_map_memory_footprint): every map type still has
    update, lookup and memory rows, and each memory row's prediction equals the kernel's figure."""
    store, rows = run_rows(["maps"], "6.1", str(PLAYBOOKS / "vm_playbook.yaml"), tmp_path / "results")
    assert store.manifest()["kernel_release"].startswith("6.1.")
    maps = rows["maps"]
    ops = {(r["map_type"], r["operation"]) for r in maps if r["status"] == "ok"}
    for t in ("array", "percpu_array", "hash", "percpu_hash", "lru_hash", "lru_percpu_hash"):
        assert (t, "update") in ops and (t, "lookup") in ops and (t, "memory") in ops, t
    mem = [r for r in maps if r["operation"] == "memory" and r["key_space"] == "dense" and r["status"] == "ok"]
    assert {r["max_entries"] for r in mem} == {1024, 10240}
    for r in mem:
        assert r["memlock_regime"] == "footprint5.11-6.3"
        assert r["memlock_predicted"] == r["memlock_measured"], r["memlock_note"]
    talk = [r for r in maps if r["key_space"] == "talk" and r["status"] == "ok"]
    assert talk and {r["memlock_measured"] for r in talk} == {163840}  # both flags: entries x 16 B, paged
