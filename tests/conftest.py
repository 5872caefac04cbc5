"""Shared test helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lab import bench


def run_rows(suites: list[str], kernel: str, playbook: str, results: Path) -> tuple[object, dict[str, list[dict]]]:
    """Run suites through lab.bench (the `inv bench.*` path) with results under `results`;
    returns the run store and each suite's rows."""
    old = os.environ.get("LAB_RESULTS")
    os.environ["LAB_RESULTS"] = str(results)
    try:
        store = bench.run(suites, kernel=kernel, playbook=playbook)
    finally:
        if old is None:
            os.environ.pop("LAB_RESULTS")
        else:
            os.environ["LAB_RESULTS"] = old
    rows = {}
    for s in suites:
        f = store.rows_file(s)
        rows[s] = [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []
    return store, rows
