"""The user's tools in a 6.12 guest (TCG: the pipeline), on the image with bpftrace added by the
playbook (image.packages, cached apart): the bpftrace one-liner on sys_enter_openat under the open
stressor and the synthetic tool pushed as a local executable are measured and decomposed beside
runqlat; a pushed tool whose interpreter the guest lacks is refused naming it. One short trial each."""

from __future__ import annotations

import pytest
import yaml
from conftest import run_rows

from lab.agent import schema
from lab.run import playbooks

pytestmark = pytest.mark.vm


def test_bpftrace_and_a_pushed_tool_beside_runqlat_in_a_guest(tmp_path):
    data = yaml.safe_load(playbooks.resolve("usertools").read_text())
    data["suites"]["tools"].update(trials=1, seconds=1, proof_seconds=1, map_count=False)
    bad = tmp_path / "needs_perl6"
    bad.write_text("#!/usr/bin/no-such-interpreter\n")
    data["suites"]["tools"]["user_tools"]["badinterp"] = {"push": str(bad)}
    pb = tmp_path / "pb.yaml"
    pb.write_text(yaml.safe_dump(data))
    store, got = run_rows(["tools"], "6.12", str(pb), tmp_path / "results")
    rows = {r["tool"]: r for r in got["tools"]}
    assert store.manifest()["kernel_release"].startswith("6.12")
    for name in ("runqlat", "openat", "synth"):
        r = rows[name]
        assert schema.validate(r) == [] and r["status"] == "ok", (name, r["reason"])
        assert r["events"] > 0 and r["cpu_exec"] is not None and r["program_detail"]
    assert rows["openat"]["user_tool"] == "bpftrace" and rows["openat"]["load"].startswith("stress-ng --open 1")
    assert rows["synth"]["user_tool"] == "push" and rows["synth"]["verified_insns"] == 2 * 2000 + 3
    r = rows["badinterp"]
    assert r["status"] == "unsupported" and "missing its interpreter /usr/bin/no-such-interpreter" in r["reason"]
