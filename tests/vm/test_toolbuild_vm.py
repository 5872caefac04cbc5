"""A tool the image's libbpf-tools cannot attach on 6.12 (cachestat: account_page_dirtied is gone)
runs from a newer build pushed with the agent, in a real 6.12 guest: one tool, one short trial."""

from __future__ import annotations

import pytest
from conftest import run_rows

from lab.agent import schema

pytestmark = pytest.mark.vm


def test_cachestat_runs_from_a_newer_build_on_6_12(tmp_path):
    pb = tmp_path / "pb.yaml"
    pb.write_text("vm: {cpus: 2, memory: 1G}\nsuites:\n  tools: {tools: [cachestat], trials: 1, seconds: 1, "
                  "proof_seconds: 1, load: [hdd], tool_build: auto}\n")
    store, rows = run_rows(["tools"], "6.12", str(pb), tmp_path / "results")
    (r,) = rows["tools"]
    assert schema.validate(r) == []
    assert store.manifest()["kernel_release"].startswith("6.12")
    assert r["status"] == "ok" and r["events"] > 0, r["reason"]
    assert r["tool_build"].startswith("libbpf-tools ") and r["tool_build"].endswith(("(trixie)", "(unstable)"))
    (bookworm, *_) = r["tool_build_refused"]
    assert bookworm["build"].endswith("(bookworm)") and "account_page_dirtied" in bookworm["reason"]
