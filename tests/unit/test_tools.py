"""Tool suite: the pure parts (stress-ng report parsing, throughput loss, parameter checks)."""

import pytest

from lab.agent.tools import suite as tools

YAML = """---
system-info:
      cpus: 2
metrics:
    - stressor: cpu
      bogo-ops: 1520
      bogo-ops-per-second-usr-sys-time: 1622.723250
      bogo-ops-per-second-real-time: 760.0
      wall-clock-time: 2.005274

    - stressor: vm
      bogo-ops: 41047
      bogo-ops-per-second-real-time: 20000.0
...
"""


def test_parse_metrics_reads_real_time_bogo_ops_per_stressor():
    assert tools.parse_metrics(YAML) == {"cpu": 760.0, "vm": 20000.0}
    assert tools.parse_metrics("---\nsystem-info:\n  cpus: 2\n...\n") == {}
    # per second of the stressor's own CPU time (a stressor without the field is left out)
    assert tools.parse_metrics(YAML, tools.CPU_RATE) == {"cpu": 1622.72325}


def test_loss_is_the_mean_over_stressors_so_no_stressor_dominates():
    base = {"cpu": 1000.0, "vm": 20000.0}
    assert tools.loss_pct(base, {"cpu": 900.0, "vm": 20000.0}) == pytest.approx(5.0)
    assert tools.loss_pct(base, {"cpu": 1000.0, "vm": 21000.0}) == pytest.approx(-2.5)
    assert tools.loss_pct({}, {"cpu": 1.0}) is None
    pairs = [(base, {"cpu": 900.0, "vm": 19000.0}), (base, {"cpu": 800.0, "vm": 19000.0})]
    assert tools.per_stressor(pairs) == {"cpu": pytest.approx(15.0), "vm": pytest.approx(5.0)}


def test_parameters_are_checked():
    assert tools.check({"tools": ["runqlat"], "trials": 2, "load": ["cpu", "sock"]}) == []
    problems = " ".join(tools.check({"tools": ["runqlat", "opensnoopy"], "seconds": 0, "load": ["gpu"]}))
    assert "'opensnoopy' is not one of runqlat" in problems and "seconds must be a positive integer" in problems
    assert "'gpu' is not one of cpu" in problems


def test_the_talks_six_tools_cover_cpu_memory_io_and_network():
    assert len(tools.TOOLS) == 6 and set(tools.TOOLS.values()) == {"cpu", "memory", "io", "network"}


def test_the_scratch_disk_the_lab_makes_is_the_one_the_suite_finds(tmp_path):
    from lab.guest import vm

    img = vm.make_scratch_disk(tmp_path / "scratch.img")
    assert img.stat().st_size == vm.SCRATCH_BYTES and img.stat().st_blocks * 512 < vm.SCRATCH_BYTES  # sparse
    assert tools.ext4_label(str(img)) == tools.SCRATCH_LABEL
    (tmp_path / "other").write_bytes(b"\0" * 4096)
    assert tools.ext4_label(str(tmp_path / "other")) is None
    assert tools.ext4_label(str(tmp_path / "missing")) is None


def test_each_tool_gets_the_load_it_watches_unless_the_playbook_says_otherwise():
    from lab.agent.common import Context

    def suite(**params):
        return tools.ToolSuite(Context("tools", "r", "host", "/nonexistent", params))

    assert suite().load_of("runqlat") == ["cpu", "switch"] and suite().load_of("tcplife") == ["sock"]
    assert suite(load=["cpu", "vm"]).load_of("tcplife") == ["cpu", "vm"]
    assert suite(load=["cpu"], loads={"tcplife": ["sock", "cpu"]}).load_of("tcplife") == ["sock", "cpu"]
    assert all(set(v) <= set(tools.STRESSORS) for v in tools.WATCHED.values())
    assert set(tools.WATCHED) == set(tools.TOOLS)
    assert tools.check({"loads": {"tcplife": ["sock"]}, "combined": False}) == []
    problems = " ".join(tools.check({"loads": {"top": ["cpu"], "tcplife": ["gpu"]}, "combined": "yes"}))
    assert "'top' is not one of" in problems and "tcplife must be a non-empty list" in problems
    assert "combined must be true or false" in problems


def test_attach_types_get_the_hook_suites_names():
    from lab.agent.tools import attach as ta

    assert ta.hook_of("tracing", ta.LINK_RAW_TP, {}) == "tp_btf"
    assert ta.hook_of("raw_tracepoint", ta.LINK_RAW_TP, {}) == "raw_tp"
    assert ta.hook_of("tracing", ta.LINK_TRACING, {"attach_type": 24}) == "fentry"
    assert ta.hook_of("tracing", ta.LINK_TRACING, {"attach_type": 25}) == "fexit"
    assert ta.hook_of("kprobe", ta.LINK_KPROBE_MULTI, {"flags": 0}) == "kprobe_multi"
    assert ta.hook_of("kprobe", ta.LINK_PERF_EVENT, {"perf_type": 4}) == "kretprobe"
    assert ta.hook_of("tracepoint", ta.LINK_PERF_EVENT, {"perf_type": 5}) == "tracepoint"
    assert ta.hook_of("kprobe", ta.LINK_PERF_EVENT, {"perf_type": 0}) == "kprobe"  # before 6.6: no detail
    assert ta.hook_of("tracepoint", None, {}) == "tracepoint"  # attached without a link


def test_socket_stressors_get_a_free_port_of_their_own():
    import socket

    port = tools.free_port()
    assert 20000 <= port < 60000
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # nothing held it
