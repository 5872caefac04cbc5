"""The event-count plugin for real, in one 6.12 icount guest: it loads (API version checked), the
windows the helper marks reach the rows, the plugin's instruction count is the row's figure, the
estimate sits beside it in its own unit, and exceptions are counted only where the int3 path runs."""

from __future__ import annotations

import pytest

from lab.core import units
from tests.conftest import PLAYBOOKS, run_rows

pytestmark = pytest.mark.vm
PB = str(PLAYBOOKS / "events_playbook.yaml")


@pytest.fixture(scope="module")
def run(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("LAB_EVENTS", "on")
    return run_rows(["hooks"], "6.12", PB, tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_plugin_counts_in_the_trial_windows(run):
    store, rows = run
    m = store.manifest()
    assert m["event_plugin"]["api_version"] == 1 and len(m["event_plugin"]["sha256"]) == 64
    assert m["cost_model"]["version"] == 1 and m["mitigations"] in ("default", "off") and m["vulnerabilities"]
    kb = {r["hook"]: r for r in rows["hooks"] if r.get("method") == "kernel_batch"}
    assert set(kb) == {"raw_tp", "kprobe", "kretprobe", "kprobe_int3"}, [r.get("reason") for r in rows["hooks"]]
    for h, r in kb.items():
        assert r["status"] == "ok", (h, r["reason"])
        assert "events_note" not in r, (h, r.get("events_note"))
        assert r["figure_unit"] == units.INSN and r["est_unit"] == units.MODEL
        # the plugin's count over the same windows is the row's instruction figure (icount's clock)
        assert abs(r["ev_insn"] - r["ns_median"]) <= 0.02 * r["ns_median"] + 2, (h, r["ev_insn"], r["ns_median"])
        assert r["est_cycles"] > 0


def test_exceptions_only_on_the_int3_path(run):
    _, rows = run
    kb = {r["hook"]: r for r in rows["hooks"] if r.get("method") == "kernel_batch"}
    assert kb["kprobe"]["mechanism"] == "ftrace" and kb["kprobe"]["ev_exc_int3"] == 0
    assert kb["kretprobe"]["ev_exc_int3"] == 0 and kb["raw_tp"]["ev_exc_int3"] == 0
    # measured on 6.12: 2 breakpoint exceptions per hit (the probe's int3, then the one after the copied
    # instruction that x86 kprobes use instead of single-stepping), an iret each
    assert kb["kprobe_int3"]["mechanism"] == "int3" and kb["kprobe_int3"]["ev_exc_int3"] >= 0.99
    assert kb["kprobe_int3"]["kprobe_offset"] > 0
