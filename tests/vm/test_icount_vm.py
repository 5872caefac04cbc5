"""The instruction-counted mode for real: two separate boots of 6.12 under icount (QEMU TCG with
-icount shift=0) run the same hooks and maps and count the same guest instructions."""

from __future__ import annotations

import pytest

from lab.agent.hooks.gates import ICOUNT_TOLERANCE
from tests.conftest import PLAYBOOKS, run_rows

pytestmark = pytest.mark.vm
PB = str(PLAYBOOKS / "icount_playbook.yaml")
KEY = ("suite", "hook", "variant", "method", "map_type", "operation", "key_space", "contention", "nkeys")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    return [run_rows(["hooks", "maps"], "6.12", PB, results) for _ in range(2)]


def _by_key(rows):
    return {tuple(r.get(k) for k in KEY): r for r in rows}


def test_runs_record_the_mode_and_what_the_count_depends_on(two_runs):
    for store, _ in two_runs:
        m = store.manifest()
        assert m["accelerator"] == "icount" and m["status"] == "complete", m.get("status_reason")
        assert m["qemu_version"].startswith("QEMU emulator") and "nokaslr" in m["guest_cmdline"]
        assert m["cpu_flags_md5"] and "-icount shift=0" in m["icount"]


def test_kernel_batch_repeats_across_boots_and_orders_by_path_length(two_runs):
    (_, a), (_, b) = two_runs
    ka = _by_key(r for r in a["hooks"] if r.get("method") == "kernel_batch")
    kb = _by_key(r for r in b["hooks"] if r.get("method") == "kernel_batch")
    assert len(ka) == 3 and set(ka) == set(kb)
    tol = ICOUNT_TOLERANCE["kernel_batch"]
    for k, r in ka.items():
        assert r["status"] == "ok" and r["figure_unit"] == "insn", (k, r["reason"])
        assert abs(r["ns_median"] - kb[k]["ns_median"]) <= tol * r["ns_median"], (k, r["ns_median"], kb[k]["ns_median"])
    cost = {r["hook"]: r["ns_median"] for r in ka.values()}
    assert cost["raw_tp"] < cost["kprobe"] < cost["kretprobe"], cost  # measured 109 < 380 < 662 on 6.12


def test_map_rows_count_instructions_and_contention_is_refused(two_runs):
    (_, a), (_, b) = two_runs
    ma = _by_key(r for r in a["maps"] if r.get("driver") == "kernel" and r.get("contention") == "1cpu")
    mb = _by_key(r for r in b["maps"] if r.get("driver") == "kernel" and r.get("contention") == "1cpu")
    assert len(ma) >= 4 and set(ma) == set(mb)
    for k, r in ma.items():
        assert r["status"] == "ok" and r["figure_unit"] == "insn", (k, r["reason"])
        tol = ICOUNT_TOLERANCE[r["method"]]  # 2%: two boots moved these medians by <= 0.52%
        assert abs(r["ns_median"] - mb[k]["ns_median"]) <= tol * r["ns_median"], (k, r["ns_median"], mb[k])
    parallel = [r for r in a["maps"] if r.get("contention") in ("allcpu", "shared", "disjoint")]
    assert parallel and all(r["status"] == "unsupported" and "one after another" in r["reason"] for r in parallel)
