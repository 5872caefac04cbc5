"""Map access counted for real on a 6.12 guest (TCG): the synthetic tool makes a known number of
hash-map updates per event, and the counting phase (kprobe.multi on the kernel's map functions,
bpf/mapcount.bpf.c) must find that many htab_map_update_elem calls per program run.

The synthetic tool (tests/support/synth_tool.py, standard library only) is copied into the guest as
/tmp/lab-synth/runqlat: the playbook's tools are the six libbpf-tools names, and tool_dir points the
suite at that directory, so "runqlat" here is the synthetic tool, not libbpf-tools' runqlat.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_rows

from lab.agent import schema
from lab.core.config import Paths
from lab.run.labs import open_target
from lab.run.playbooks import VmSpec

pytestmark = pytest.mark.vm
HERE = Path(__file__).resolve().parent
UPDATES = 3
GUEST_DIR = "/tmp/lab-synth"
WRAPPER = f"""#!/usr/bin/python3
import os, runpy
os.environ.update(LAB_SYNTH_ITERS="200", LAB_SYNTH_SHARE="0", LAB_SYNTH_UPDATES="{UPDATES}")
runpy.run_path("{GUEST_DIR}/synth_tool.py", run_name="__main__")
"""


def test_counted_hash_updates_per_event_match_the_synthetic_tool(tmp_path):
    pb = tmp_path / "pb.yaml"
    pb.write_text("vm: {cpus: 2, memory: 1G}\nsuites:\n  tools: {tools: [runqlat], trials: 1, seconds: 1, "
                  f"proof_seconds: 1, count_seconds: 3, load: [switch], tool_dir: {GUEST_DIR}, "
                  "tool_build: packaged, combined: false}\n")
    with open_target("6.12", VmSpec(cpus=2, memory="1G"), Paths()) as target:
        conn = target.conn
        conn.run(f"mkdir -p {GUEST_DIR}", hide=True)
        conn.put(str(HERE.parent / "support" / "synth_tool.py"), f"{GUEST_DIR}/synth_tool.py")
        (tmp_path / "runqlat").write_text(WRAPPER)
        conn.put(str(tmp_path / "runqlat"), f"{GUEST_DIR}/runqlat")
        conn.run(f"chmod 755 {GUEST_DIR}/runqlat", hide=True)
        try:
            store, rows = run_rows(["tools"], "6.12", str(pb), tmp_path / "results")
        finally:
            conn.run(f"rm -rf {GUEST_DIR}", hide=True, warn=True)
    (r,) = rows["tools"]
    assert schema.validate(r) == [] and r["status"] == "ok", r["reason"]
    assert store.manifest()["kernel_release"].startswith("6.12")
    mc = r["map_count"]
    assert "map_access" not in r["not_separable"]
    assert mc["mode"] == "kprobe_multi" and "htab_map_update_elem" in mc["attached"], mc
    assert mc["missed_per_s"] == 0, mc  # a raw_tp program: the counter is never suppressed inside it
    events, updates = mc["events_per_s"], mc["ops"]["hash update"]
    print(f"6.12 synthetic: {events} events/s, hash update {updates}/s = {updates / events:.3f} per event, "
          f"mode {mc['mode']}, not counted: {mc['not_counted']}")
    assert events > 50, mc  # the switch stressor's context switches
    # calls in the tool's own context (its few switches: it sleeps) are excluded as its own process's
    own = mc["excluded"]["tool_process_per_s"].get("htab_map_update_elem", 0.0)
    assert updates / events == pytest.approx(UPDATES, rel=0.05), mc
    assert (updates + own) / events == pytest.approx(UPDATES, rel=0.02), mc
    assert mc["functions"]["htab_map_update_elem"]["op"] == "update"
    assert list(mc["functions"]["htab_map_update_elem"]["by_map"])[0].startswith("hash ")
