"""What a row's figures count: nanoseconds of time, or guest instructions (QEMU's instruction
counting, accelerator `icount`). The two never share a table, a plot, a comparison or a claim part.

Rows carry `figure_unit` ("ns" | "insn"); rows recorded before that field are in ns unless they ran
under icount. Readers ask `of(row)` and label with `label(unit)`; nothing else decides a unit.
Imports nothing of the lab's (every layer may use it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NS = "ns"
INSN = "insn"
# The stated cost model's estimated cycles (lab/results/costmodel.py): a row's `est_cycles`, beside its
# instructions, never in the same column, table cell or comparison as ns or instructions.
MODEL = "model"
LABELS = {NS: "ns", INSN: "guest instructions", MODEL: "estimated cycles (model, emulated)"}
SHORT = {NS: "ns", INSN: "insn", MODEL: "est. cycles"}
# Beside every instruction figure: what it is and what it leaves out (QEMU's icount design).
INSN_NOTE = ("guest instructions counted by QEMU (-icount shift=0, emulated): a path length, exact and "
             "repeatable on any host; traps are undercounted (an int3 counts one, its delivery none), "
             "and cache misses, mitigations and microcode costs are invisible")


def of(row: Mapping[str, Any]) -> str:
    """"insn" for a row whose figures are guest instructions, else "ns"."""
    u = row.get("figure_unit")
    if u in (NS, INSN):
        return str(u)
    return INSN if row.get("accelerator") == "icount" else NS


def label(unit: str) -> str:
    return LABELS.get(unit, unit)


def short(unit: str) -> str:
    return SHORT.get(unit, unit)
