"""The stated cost model and the plugin's windows, on rows the agent really produced (6.12 under
icount): the windows are matched to a row's trials by id and block order, their counts turned into
per-trigger figures over the counting baseline exactly like the instructions, priced by the model,
and kept in their own unit ("model") beside the instructions, never mixed with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.analysis import estranks, insntable, ranks
from lab.core import units
from lab.results import aggregate, costmodel, events
from lab.results.store import load_runs

FIX = Path(__file__).resolve().parents[1] / "fixtures"
ICOUNT = FIX / "icount" / "20261207T081111Z-6.12.118_deb12-amd64-0962"
NAMES = ["insn", "pushf", "popf", "lock", "cpuid", "wrmsr", "iret", "swapgs", "fence", "syscall", "sysret", "int3",
         "call", "ret", "indirect", "ret_miss", "ind_change", "exc_int3", "exc_other", "irq"]
HEADER = "# eventcount 1 counters " + " ".join(NAMES)


def recorded() -> list[dict]:
    rows = [json.loads(ln) for ln in (ICOUNT / "hooks.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("method") == "kernel_batch" and r["variant"] == "empty"]


def log_for(row: dict, mark: str, extra: dict[str, int]) -> tuple[dict, str]:
    """The row as the agent now writes it (event_windows) and the plugin's windows for its trials:
    each trial's hooked block holds the row's instructions (its sample x ops) over its counting block."""
    ops = row["ops_per_trial"]
    orders = ["ABC" if t % 2 == 0 else "CBA" for t in range(len(row["samples"]))]
    lines = [HEADER]
    for order, s, base in zip(orders, row["samples"], row["count_samples"], strict=True):
        c = [0] * len(NAMES)
        c[0] = round(base * ops)
        blocks = {"A": [round(base * ops * 0.9)] + [0] * (len(NAMES) - 1), "C": c,
                  "B": [round((base + s) * ops)] + [extra.get(n, 0) * ops for n in NAMES[1:]]}
        lines += [f"W {mark} {'ABC'.index(b)} " + " ".join(map(str, blocks[b])) for b in order]
    row = dict(row, event_windows={"mark_id": "00" + mark, "orders": orders, "ops": ops})
    return row, "\n".join(lines) + "\n"


def test_model_arithmetic_is_stated_and_fixed():
    m = costmodel.model()
    assert m.version == 1 and "Skylake" in m.core and m.scale == 1.0
    assert m.estimate({"insn": 100}) == pytest.approx(100 * m.base_rate)
    counts = {"insn": 200, "popf": 1, "ret_miss": 2, "lock": 1}
    want = 200 * m.base_rate + m.weights["popf"] + 2 * m.weights["ret_miss"] + m.weights["lock"]
    assert m.estimate(counts) == pytest.approx(want)
    assert m.estimate(counts, without="popf") == pytest.approx(want - m.weights["popf"])
    assert sum(m.parts(counts).values()) == pytest.approx(want)
    man = m.manifest()
    assert man["version"] == 1 and man["weights"]["popf"] == m.weights["popf"]


def test_windows_become_per_trigger_counts_like_the_instructions():
    rows = recorded()
    kret = next(r for r in rows if r["hook"] == "kretprobe")
    row, log = log_for(kret, "9f3a", {"popf": 1, "pushf": 1, "ret_miss": 2, "call": 3, "ret": 3})
    got = events.enrich(row, None)
    assert got is row  # no log: unchanged
    f = events.fields(row, log)
    assert f["ev_insn"] == pytest.approx(kret["ns_median"], abs=0.01)  # the plugin's count is the row's figure
    assert f["ev_popf"] == 1 and f["ev_ret_miss"] == 2 and f["ev_exc_int3"] == 0
    m = costmodel.model()
    want = f["ev_insn"] * m.base_rate + m.weights["popf"] + m.weights["pushf"] + 2 * m.weights["ret_miss"]
    assert f["est_cycles"] == pytest.approx(want, rel=1e-4)
    assert f["est_unit"] == units.MODEL and f["est_model"] == 1 and "events_note" not in f
    assert len(f["ev_samples"]["insn"]) == len(kret["samples"])


def test_windows_that_do_not_match_the_trials_are_no_figure():
    kret = recorded()[0]
    row, log = log_for(kret, "77", {})
    short = "\n".join(log.splitlines()[:-1])
    assert "do not match" in events.fields(row, short)["events_note"]
    assert "did not run under" in events.fields(dict(row, event_windows={"mark_id": "1234", "orders": [], "ops": 1}),
                                                log)["events_note"]


def test_the_estimate_keeps_its_own_unit_on_recorded_rows(tmp_path):
    # enrich the recorded run's kernel_batch rows as the host does, then read it back as a run
    run = tmp_path / ICOUNT.name
    run.mkdir()
    (run / "manifest.json").write_text((ICOUNT / "manifest.json").read_text())
    extra = {"raw_tp": {}, "fentry": {"call": 2, "ret": 2}, "tracepoint": {"ind_change": 1},
             "kprobe": {"pushf": 1, "popf": 1}, "kretprobe": {"pushf": 2, "popf": 2, "ret_miss": 2}}
    out = []
    for i, ln in enumerate((ICOUNT / "hooks.jsonl").read_text().splitlines()):
        r = json.loads(ln)
        if r.get("method") == "kernel_batch" and r["variant"] == "empty":
            r, log = log_for(r, f"{i + 1:x}", extra[r["hook"]])
            r = dict(r, **events.fields(r, log))
        out.append(json.dumps(r, sort_keys=True))
    (run / "hooks.jsonl").write_text("\n".join(out) + "\n")
    df = aggregate.rows_frame(load_runs([run]))
    kb = df[(df["method"] == "kernel_batch") & (df["variant"] == "empty")]
    assert set(kb["figure_unit"]) == {units.INSN} and set(kb["est_unit"]) == {units.MODEL}
    # the instructions' order against hardware is untouched by the estimate beside it
    before = ranks.orderings(aggregate.rows_frame(load_runs([ICOUNT])))
    after = ranks.orderings(df)
    assert [(o.hooks, o.rho) for o in after if o.unit == units.INSN] == [(o.hooks, o.rho) for o in before]
    # recorded rows from before mitigations were recorded: the comparison says so
    assert all("mitigations are not recorded" in o.note for o in after)
    est_order = [o for o in after if o.unit == units.MODEL]  # the estimate beside them, named as such
    assert len(est_order) == 1 and "estimated cycles (model, emulated)" in est_order[0].target
    fits = estranks.fits(df)
    ins, est = fits[0], fits[1]
    assert ins.unit == units.INSN and est.unit == units.MODEL and est.figure == estranks.LABEL
    assert ins.kret_raw == pytest.approx(661.67 / 109.08, rel=1e-3)
    assert est.kret_raw > ins.kret_raw  # popf and return misses price kretprobe up
    assert {f.figure for f in fits[2:]} == {f"{estranks.LABEL} without {c}" for c in ("pushf", "popf", "ret_miss",
                                                                                     "ind_change")}
    tables = insntable.build(df)  # the matrix gains the estimate as a table of its own
    est_t = next(t for t in tables if t["unit"] == units.MODEL)
    assert "estimated cycles (model, emulated)" in est_t["title"] and "not ns, not instructions" in est_t["note"]
    kret = next(r for r in est_t["rows"] if r["cells"][0] == "kretprobe empty")
    assert float(kret["cells"][1].replace(",", "")) > 661.67 * costmodel.model().base_rate
    md = estranks.markdown(fits)
    assert "estimated cycles (model, emulated)" in md and "guest instructions" in md
    assert units.label(units.MODEL) != units.label(units.INSN) != units.label(units.NS)
