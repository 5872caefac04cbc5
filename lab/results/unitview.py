"""How the report, its tables and plots, and `results.compare` name what a figure counts and how a
target ran. lab/core/units.py says which unit a row is in; this module turns that into words and keeps
frames of different units apart (`by_unit`), so ns and guest instructions never share a table, a
plot facet or a comparison.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lab.core import units

# How each accelerator ran, in the words the report uses beside a run or a target.
MODES = {
    "kvm": "kvm: hardware virtualisation; figures in ns",
    "host": "host: the machine's own kernel, no VM; figures in ns",
    "icount": "icount: emulated (QEMU TCG, -icount shift=0); figures in guest instructions, exact and repeatable",
    "tcg": "tcg: emulated (QEMU TCG); timings are noise, never figures (memlock bytes still count)",
}
EMULATED_INSN = "emulated, in guest instructions"
ORDER = (units.NS, units.INSN)


def mode(accelerator: Any) -> str:
    """One line: what an accelerator is and what its figures count."""
    return MODES.get(str(accelerator), f"{accelerator}: figures in ns")


def label(unit: str, template: str) -> str:
    """A figure's label in its unit: `template` names the unit as {u} ("added {u} per event") and a
    second of the guest's clock as {s} (under icount a guest second is 10^9 guest instructions)."""
    return template.format(u=units.label(unit), s="10^9 guest instructions" if unit == units.INSN else "s")


def suffix(unit: str) -> str:
    """The unit after a number in a cell: " ns" or " insn"."""
    return " " + units.short(unit)


def tag(unit: str) -> str:
    """What a title adds for a unit: nothing for ns, "emulated, in guest instructions" for insn."""
    return EMULATED_INSN if unit == units.INSN else ""


def note(unit: str) -> str:
    """The note every instruction figure carries, units.INSN_NOTE ("" for ns); shown after tag(unit)."""
    return units.INSN_NOTE if unit == units.INSN else ""


def frame_units(df: pd.DataFrame) -> list[str]:
    """The units of a frame's rows, ns first (rows without `figure_unit` are read by units.of)."""
    if df.empty:
        return []
    if "figure_unit" in df.columns:
        found = {str(u) for u in df["figure_unit"] if isinstance(u, str)}
    else:
        found = {units.of({"accelerator": a}) for a in df.get("accelerator", pd.Series(dtype=object))}
    found = found or {units.NS}
    return sorted(found, key=lambda u: (ORDER.index(u) if u in ORDER else len(ORDER), u))


def by_unit(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The frame split by unit (ns first); an empty frame gives nothing."""
    if df.empty:
        return []
    if "figure_unit" not in df.columns:
        return [(frame_units(df)[0], df)]
    return [(u, df[df["figure_unit"] == u]) for u in frame_units(df)]


def one_unit(df: pd.DataFrame, what: str = "these rows") -> str:
    """The single unit of a frame; a frame mixing ns and guest instructions is refused."""
    found = frame_units(df)
    if len(found) > 1:
        raise ValueError(f"{what} mix {' and '.join(units.label(u) for u in found)}: figures of different "
                         "units are never shown or compared together")
    return found[0] if found else units.NS
