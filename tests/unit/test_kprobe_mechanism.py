"""The kprobe's int3 path under kernel_batch: the two attach types off the ftrace site run on the
helper trigger with the kprobe programs, ask batchbench to move off the ftrace site, switch kprobe
optimization off only for kprobe_int3 (and put it back), and carry the mechanism batchbench read."""

from __future__ import annotations

import pytest

from lab.agent.hooks import batch, kprobes
from lab.agent.hooks.table import HOOKS, on


def test_off_ftrace_kprobes_are_batch_only_helper_hooks_with_the_kprobe_programs():
    for hook in kprobes.OFF_FTRACE:
        assert hook in on("batch") and hook not in on("open") and HOOKS[hook].prog == "kprobe"
        trigger, prefix, point, per = batch.plan(hook, 100, True)
        assert (trigger, prefix, per) == ("helper", "kprobe", batch.PER_KERNEL) and "off its ftrace site" in point
        assert kprobes.helper_args(hook) == ["--kprobe-off-ftrace"]
    assert batch.plan("kprobe", 100, True)[1] == "kprobe" and kprobes.helper_args("kprobe") == []
    assert batch.plan("fmod_ret", 100, True)[0] == "kfunc"


def test_optimization_is_off_only_for_kprobe_int3_and_restored(tmp_path):
    sysctl = tmp_path / "kprobes-optimization"
    sysctl.write_text("1\n")
    with kprobes.Optimization("kprobe_int3", str(sysctl)):
        assert sysctl.read_text() == "0"
    assert sysctl.read_text() == "1"
    with kprobes.Optimization("kprobe_off", str(sysctl)):
        assert sysctl.read_text() == "1"
    with pytest.raises(RuntimeError) as e, kprobes.Optimization("kprobe_int3", str(tmp_path / "missing")):
        pass
    assert e.value.args[0] == 2 and "cannot switch kprobe optimization off" in e.value.args[1]


def test_rows_carry_the_mechanism_read_while_attached():
    assert kprobes.row_fields("kprobe", {"mechanism": "ftrace", "kprobe_offset": 0}) == {"mechanism": "ftrace"}
    assert kprobes.row_fields("kprobe_int3", {"mechanism": "int3", "kprobe_offset": 9}) == {
        "mechanism": "int3", "kprobe_offset": 9, "kprobes_optimization": 0}
    assert kprobes.row_fields("raw_tp", {"mechanism": ""}) == {}
