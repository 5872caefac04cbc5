"""A store of N runs made from one recorded run (tests and benchmarks/history_page.py): each run's rows
are the recorded rows with their per-trial samples drawn again (with replacement, seeded) from the
recorded ones and scaled by a level of the run's own (a deviation of a recorded trial from its median,
times a uniform draw), so run-to-run noise stays within the recorded trials' spread; a step of
`step_pct` % is planted in the rows `planted(row)` picks, from run `step_at` on."""

from __future__ import annotations

import datetime
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLE_FIELDS = ("samples", "overhead_samples")


def _redraw(row: dict[str, Any], rng: random.Random, factor: float) -> dict[str, Any]:
    from lab.results import stats

    out = dict(row)
    for f in SAMPLE_FIELDS:
        vals = row.get(f)
        if isinstance(vals, list) and vals and all(isinstance(v, int | float) for v in vals):
            med = stats.median_ci(vals).median
            devs = [v / med - 1 for v in vals] if med else [0.0]
            level = 1 + rng.choice(devs) * rng.random()  # the run's own level, within the trials' spread
            drawn = [rng.choice(vals) * level * factor for _ in vals]
            out[f] = drawn
            if f == "samples" and row.get("ns_median") is not None:
                iv = stats.median_ci(drawn)
                out["ns_median"] = iv.median
                if iv.low is not None:
                    out["ns_ci_low"], out["ns_ci_high"] = iv.low, iv.high
    return out


def plant(src: Path, out: Path, n: int = 20, step_at: int = 10, step_pct: float = 1.0,
          planted: Callable[[dict[str, Any]], bool] = lambda r: False, seed: int = 0) -> list[Path]:
    """n runs under `out` made from the recorded run `src` (see the module docstring)."""
    rng = random.Random(seed)
    manifest = json.loads((src / "manifest.json").read_text())
    t0 = datetime.datetime(2026, 11, 1, 2, 0, tzinfo=datetime.UTC)
    dirs = []
    for i in range(n):
        t = t0 + datetime.timedelta(days=i)
        run_id = f"{t:%Y%m%dT%H%M%SZ}-{manifest.get('kernel_release', 'k')}-{i:04x}"
        d = out / run_id
        d.mkdir(parents=True)
        (d / "manifest.json").write_text(json.dumps(dict(manifest, run_id=run_id, time=t.isoformat()), indent=1))
        for f in sorted(src.glob("*.jsonl")):
            lines = []
            for line in f.read_text().splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                factor = 1 + step_pct / 100 if i >= step_at and planted(row) else 1.0
                lines.append(json.dumps(dict(_redraw(row, rng, factor), run_id=run_id)))
            (d / f.name).write_text("\n".join(lines) + "\n")
        for extra in src.iterdir():
            if extra.is_file() and extra.suffix not in (".jsonl",) and extra.name != "manifest.json":
                shutil.copy(extra, d / extra.name)
        dirs.append(d)
    return dirs
