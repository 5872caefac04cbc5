"""How long results.history and its page take for N nights (default 30) of the nightly's shape: one
leg per recorded run of tests/fixtures/icount_matrix (five kernels under icount) plus the recorded host
run, each night's runs made from them (tests/support/history_store.py), a 1% step planted in 6.12's
raw_tp kernel_batch rows at the middle night. Prints the figures; asserts nothing (the issue's target:
the page in under 10 s).

    python benchmarks/history_page.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.analysis import history  # noqa: E402
from lab.report import historypage  # noqa: E402
from tests.support import history_store  # noqa: E402

LEGS = sorted((ROOT / "tests/fixtures/icount_matrix").iterdir()) + [
    ROOT / "tests/fixtures/runs/20261127T053143Z-6.18.44-fc-v782-ee1e"]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        for i, leg in enumerate(LEGS):
            six = "6.12.118" in leg.name
            history_store.plant(leg, store / leg.name, n=n, step_at=n // 2, step_pct=1.0 if six else 0.0, seed=i,
                                planted=lambda r: r.get("hook") == "raw_tp" and r.get("method") == "kernel_batch")
        t0 = time.monotonic()
        dirs = history.find_runs(store)
        series, notes = history.build(dirs)
        t1 = time.monotonic()
        page = historypage.write(series, notes, dirs, Path(tmp) / "history.html")
        t2 = time.monotonic()
        cps = history.changes(series)
        print(f"nights {n}, legs {len(LEGS)}, runs {len(dirs)}, series {len(series)}, change points {len(cps)} "
              f"({', '.join(s.row_key for s, _ in cps)})")
        print(f"series + change points: {t1 - t0:.2f} s; page: {t2 - t1:.2f} s; total {t2 - t0:.2f} s "
              f"(target: under 10 s); page size {page.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
