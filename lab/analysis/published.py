"""Published figures the analysis sets the lab's own beside (not measured here): the kernel trigger
bench's rates (lab/data/reference_hooks.yaml). Data tower: reads lab/data only."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from lab.core.config import DATA


@cache
def reference_hooks() -> dict[str, Any]:
    """lab/data/reference_hooks.yaml: the kernel bench's published trigger figures (not measured here),
    with each hook's ns per event over the bench's counting baseline derived from its rates."""
    ref = yaml.safe_load((DATA / "reference_hooks.yaml").read_text())
    rates = ref["rates_m_per_s"]
    ref["added_ns"] = {hook: 1000.0 / rates[name] - 1000.0 / rates[ref["baseline"]]
                       for hook, name in ref["hooks"].items()}
    return ref
