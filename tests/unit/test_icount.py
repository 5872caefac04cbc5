"""The instruction-counted mode (accelerator icount) without a VM: how it is chosen, the QEMU options
it pins, the playbook's icount overrides, and the agent's determinism gate and refusals."""

from __future__ import annotations

import json

import pytest

from lab.agent.hooks import gates as hookgates
from lab.agent.hooks import suite as hooks
from lab.agent.maps import suite as maps
from lab.core import units
from lab.core.config import InputError
from lab.guest import accel
from lab.run import playbooks
from tests.unit.test_hooks import make_ctx


def test_icount_pins_what_changes_the_count():
    flags = " ".join(accel.Accel("icount", "t").qemu_flag())
    for opt in ("-icount shift=0,sleep=on", "thread=single", "-rtc clock=vm", "-seed 1", "-cpu max", "nokaslr"):
        assert opt in flags, opt
    assert "--disable-kvm" in flags and accel.Accel("icount", "t").unit == "insn"
    assert accel.Accel("tcg", "t").unit == "ns" and "icount" not in " ".join(accel.Accel("tcg", "t").qemu_flag())


@pytest.mark.parametrize("name", ["icount", "tcg", "kvm"])
def test_accelerator_by_name_wins(monkeypatch, name):
    monkeypatch.setenv("LAB_ACCEL", "tcg")
    assert accel.choose(force=name).name == name  # --accel / vm.accel over LAB_ACCEL


def test_without_kvm_guests_count_instructions(monkeypatch):
    monkeypatch.delenv("LAB_ACCEL", raising=False)
    monkeypatch.setattr(accel, "probe_kvm", lambda: (False, "/dev/kvm does not exist"))
    a = accel.choose()
    assert a.name == "icount" and "KVM not usable" in a.why and "guest instructions" in a.why


def test_unknown_accelerator_is_one_message(monkeypatch):
    monkeypatch.setenv("LAB_ACCEL", "qemu")
    with pytest.raises(InputError, match="unknown accelerator 'qemu'; use one of kvm, icount, tcg"):
        accel.choose()
    with pytest.raises(ValueError, match="unknown accelerator"):
        playbooks.vm_spec(2, "2G", "fast")


def test_playbook_icount_overrides_apply_only_under_icount(tmp_path):
    pb = playbooks.load("default")
    assert pb.params("hooks", "icount")["batch_trials"] < pb.params("hooks", "kvm")["batch_trials"]
    assert pb.params("hooks", "tcg") == pb.suites["hooks"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("suites:\n  hooks: {}\nicount:\n  maps: {ops: 10}\n")
    with pytest.raises(InputError, match="overrides suite 'maps', which 'suites' does not run"):
        playbooks.load(str(bad))
    bad.write_text("suites:\n  hooks: {}\nicount:\n  hooks: {trials: -1}\n")
    with pytest.raises(InputError, match="icount overrides of suite hooks"):
        playbooks.load(str(bad))


def _row(samples, method="kernel_batch", unit="insn"):
    s = sorted(samples)
    return {"method": method, "figure_unit": unit, "samples": samples, "ns_median": s[len(s) // 2],
            "status": "ok", "ns_ci_low": s[0], "ns_ci_high": s[-1]}


def test_determinism_gate_flags_trials_that_differ():
    steady = _row([109.06, 109.09, 109.06, 109.06, 109.08])  # recorded: raw_tp empty, 6.12 icount
    assert hookgates.determinism_problem(steady) is None
    moved = _row([109.06, 109.09, 112.0, 109.06, 109.08])
    assert "beyond the determinism tolerance" in hookgates.determinism_problem(moved)
    assert hookgates.determinism_problem(_row([100.0, 120.0, 110.0], unit="ns")) is None  # time: other gates
    assert hookgates.determinism_problem(_row([100.0, 120.0, 110.0], method="wall_abba")) is None


def test_gated_hook_is_measured_again_once():
    calls = []

    def measure():
        calls.append(1)
        return [dict(_row([109.0, 109.0, 115.0] if len(calls) == 1 else [109.0, 109.01, 109.0]), per="trigger")]

    rows = hookgates.measure_gated(hookgates.Gates(), measure)
    assert len(calls) == 2 and rows[0]["status"] == "ok" and rows[0]["remeasured"]
    assert "determinism" in rows[0]["first_attempt"]


def test_icount_rows_say_their_unit_and_refuse_what_needs_parallel_cpus(tmp_path):
    ctx = make_ctx(tmp_path, accelerator="icount")
    row = ctx.row(method="kernel_batch")
    assert row["figure_unit"] == "insn" and units.of(row) == "insn" and "guest instructions" in row["note"]
    suite = maps.MapSuite(ctx)
    r = suite.kern_row("hash", 0, "update", "dense", 16, 1024, "shared")
    assert r["status"] == "unsupported" and "one after another" in r["reason"]
    h = hooks.Suite(ctx)
    setup = {"kind": "setup", "clk_tck": 100}
    trial = {"kind": "trial", "trial": 0, "events": 10, "triggers": 10, "base_ns": 1000, "hook_ns": 2000,
             "base_stime_ns": 0, "hook_stime_ns": 0, "base_jiffies": 0, "hook_jiffies": 0}
    rows = h.rows_from_records({"hook": "kprobe", "variant": "body", "per": "openat+close"}, [setup, trial], 10,
                               talk=True)
    talk = [r for r in rows if r["method"] in ("talk_stime", "talk_jiffies")]
    assert len(talk) == 2 and all(r["status"] == "unsupported" and "ticks" in r["reason"] for r in talk)
    json.dumps(rows)


def test_old_rows_get_their_unit_from_the_accelerator():
    assert units.of({"accelerator": "icount"}) == "insn"
    assert units.of({"accelerator": "tcg"}) == "ns" and units.of({"accelerator": "host"}) == "ns"
    assert units.of({"accelerator": "icount", "figure_unit": "ns"}) == "ns"


def test_hardware_instruction_counts_where_offered_and_why_not_elsewhere():
    from lab.agent.hooks.batch import hw_insn_fields

    # recorded from batchbench on this workplace's host (no PMU exposed to it)
    setup = {"kind": "setup", "ops": 1680500,
             "hw_insns": "perf_event_open(PERF_COUNT_HW_INSTRUCTIONS): No such file or directory"}
    trial = {"hook_insns": None, "count_insns": None}
    assert "not offered here (perf_event_open" in hw_insn_fields(setup, [trial], 1680500, "count_insns")["hw_insn_note"]
    assert hw_insn_fields({"ops": 1}, [trial], 1, "count_insns") == {}  # a helper from before the counter
    ok = dict(setup, hw_insns="ok")
    trials = [{"hook_insns": 300_000 + d, "count_insns": 100_000} for d in (0, 100, 200)]
    f = hw_insn_fields(ok, trials, 1000, "count_insns")
    assert f["hw_insn_median"] == 200.1 and f["hw_insn_samples"] == [200.0, 200.1, 200.2]
