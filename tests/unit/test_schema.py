"""The row schema declares every field the suites write (version 2): recorded rows of real runs pass
it whatever their recorded version, a version-2 row with a field its suite does not declare is
refused, a version-1 row (an old run) is read through its own version, a newer version is refused."""

import glob
import json
from pathlib import Path

from lab.agent import schema
from lab.results import store

ROOT = Path(__file__).resolve().parents[2]
RECORDED = sorted(glob.glob(str(ROOT / "tests" / "fixtures" / "**" / "*.jsonl"), recursive=True))


def _rows():
    for f in RECORDED:
        for line in Path(f).read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("suite") in schema.SUITES:
                yield row


def test_every_field_of_the_recorded_runs_is_declared():
    rows = list(_rows())
    assert len(rows) > 500 and {r["suite"] for r in rows} == set(schema.SUITES)
    for r in rows:
        why = (r["suite"], r.get("hook"), r.get("map_type"))
        assert schema.validate(dict(r, schema=schema.SCHEMA_VERSION)) == [], why


def test_the_fields_host_readers_use_are_declared():
    for suite, names in {"hooks": ["freq_hz", "emulated", "perf_event", "minus_none_samples", "trials_used",
                                   "wall_ns_median", "stats_cost_ns", "runs_per_op"],
                         "tools": ["emulated", "resource", "cpu_incontext_samples", "overhead_ci_low"],
                         "maps": ["memlock_regime", "real_memory_note", "map_ns"]}.items():
        assert set(names) <= set(schema.SUITES[suite]), suite


def test_unknown_fields_are_refused_from_version_2_and_read_in_old_runs(tmp_path):
    row = next(r for r in _rows() if r["suite"] == "hooks" and r["status"] == "ok")
    new = dict(row, schema=2, made_up_figure=1.0)
    assert schema.validate(new) == ["field 'made_up_figure' not in the hooks suite's schema (version 2)"]
    old = dict(row, schema=1, made_up_figure=1.0)
    assert schema.validate(old) == []
    future = dict(row, schema=schema.SCHEMA_VERSION + 1)
    assert "newer than this lab reads" in schema.validate(future)[0]
    f = tmp_path / "hooks.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in (new, old)))
    rows, problems = store.parse_rows(f)
    assert [r["schema"] for r in rows] == [1]
    assert len(problems) == 1 and "made_up_figure" in problems[0].message and problems[0].line == 1
