"""--halfwidth on the hook suite, for real on this machine's kernel: the open-path rows of raw_tp say
how many trials they took, why they stopped and the half-width reached, and their samples are all the
trials (the host's own statistics recompute the interval from them)."""

import pytest

from lab.results import stats
from tests.conftest import PLAYBOOKS, run_rows

pytestmark = pytest.mark.host


def test_open_path_rows_take_trials_until_their_interval_is_narrow(tmp_path):
    _, by_suite = run_rows(["hooks"], "host", str(PLAYBOOKS / "hooks_precision_playbook.yaml"), tmp_path)
    rows = by_suite["hooks"]
    wall = [r for r in rows if r.get("hook") == "raw_tp" and r.get("method") == "wall_abba"]
    assert len(wall) == 1, [(r.get("method"), r.get("status"), r.get("reason")) for r in rows]
    r = wall[0]
    assert r["stopped_on"] in ("halfwidth", "budget", "max_trials") and r["halfwidth_target"] == 25
    assert r["trials_used"] >= 6 and len(r["samples"]) == r["trials_used"]  # every round's trials are in the row
    if r["stopped_on"] == "halfwidth":
        ci = stats.median_ci(r["samples"])
        assert (ci.high - ci.low) / 2 <= 0.25 * abs(ci.median) + 1e-6
