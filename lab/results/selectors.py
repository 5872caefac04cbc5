"""Selecting rows for claim parts: selectors (row field -> value, a list: any of them) over the
rows frame, the row ids behind each side, and the expansion of a part spec into concrete parts
(`per` combinations, consecutive pairs of a `series` field). Pure functions on pandas frames."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd


class Expandable(Protocol):
    name: str
    a: dict[str, Any]
    b: dict[str, Any] | None
    per: tuple[str, ...]
    series: str | None


def _norm(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def select(df: pd.DataFrame, sel: dict[str, Any], missing_matches: bool = False) -> pd.DataFrame:
    """Rows whose fields equal the selector's values (a list value: any of them). With
    missing_matches, a field a row lacks matches anything (rows that failed before measuring carry
    only the fields that name them)."""
    mask = [True] * len(df)
    for k, want in sel.items():
        if k not in df.columns:
            if missing_matches:
                continue
            return df.iloc[0:0]
        wants = {_norm(w) for w in (want if isinstance(want, list) else [want])}
        mask = [m and (missing_matches if _missing(v) else _norm(v) in wants)
                for m, v in zip(mask, df[k].tolist(), strict=True)]
    return df.iloc[[i for i, m in enumerate(mask) if m]]


def row_id(r: pd.Series) -> str:
    return f"{r['run']}/{r['_file']}:{int(r['_line'])}"


def _values(rows: pd.DataFrame, cols: tuple[str, ...]) -> list[tuple]:
    """Distinct value combinations of cols among rows (sorted; missing values skipped)."""
    seen = set()
    for vals in rows[list(cols)].itertuples(index=False, name=None):
        if not any(_missing(v) for v in vals):
            seen.add(tuple(_norm(v) for v in vals))
    return _sorted(seen)


def _sorted(combos: set[tuple]) -> list[tuple]:
    return sorted(combos, key=lambda t: tuple((0, x) if isinstance(x, int | float) else (1, str(x)) for x in t))


@dataclass(frozen=True)
class Concrete:
    """A part as evaluated in one group: its name, the selectors of both sides, or why it cannot be."""

    name: str
    a: dict[str, Any]
    b: dict[str, Any] | None
    problem: str = ""


def expand(spec: Expandable, g: pd.DataFrame, asked: dict[str, list[Any]] | None = None) -> list[Concrete]:
    """The concrete parts a spec makes in one group: one per `per` combination asked for (`asked`:
    field -> the values the run's playbook asked for, lab/analysis/expected.py) or found on either side, and
    consecutive pairs of the `series` field's values, asked for or found among ok rows."""
    asked = asked or {}
    both = pd.concat([select(g, spec.a)] + ([select(g, spec.b)] if spec.b else []))
    combos = [()]
    if spec.per and not both.empty and all(c in both for c in spec.per):
        combos = _values(both, spec.per) or [()]
    if spec.per and all(f in asked for f in spec.per):
        wanted = set(itertools.product(*[[_norm(v) for v in asked[f]] for f in spec.per]))
        found = {c for c in combos if c}
        combos = _sorted(wanted | found)
    out: list[Concrete] = []
    for combo in combos:
        fixed = dict(zip(spec.per, combo, strict=True)) if combo else {}
        tag = ", ".join(f"{k}={v}" for k, v in fixed.items())
        name = f"{spec.name} [{tag}]" if tag else spec.name
        a = dict(spec.a, **fixed)
        b = dict(spec.b, **fixed) if spec.b else None
        if not spec.series:
            out.append(Concrete(name, a, b))
            continue
        rows = select(g, a)
        ok = rows[rows["status"] == "ok"] if not rows.empty else rows
        levels = [v[0] for v in _values(ok, (spec.series,))] if spec.series in ok else []
        if spec.series in asked:
            levels = [v[0] for v in _sorted({(lv,) for lv in levels} | {(_norm(v),) for v in asked[spec.series]})]
        if len(levels) < 2:
            have = ", ".join(str(x) for x in levels) or "none"
            out.append(Concrete(name, a, b, f"fewer than two values of {spec.series} with ok rows (have: {have})"))
            continue
        for lo, hi in zip(levels, levels[1:], strict=False):
            out.append(Concrete(f"{spec.name} [{tag + ', ' if tag else ''}{spec.series} {lo} < {hi}]",
                                dict(a, **{spec.series: lo}), dict(b or a, **{spec.series: hi})))
    return out
