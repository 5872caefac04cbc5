"""The stated cost model (lab/data/cost_model.yaml): estimated cycles of one named core from the
plugin's exact counts, est_cycles = instructions x base_rate + sum(weight x count), times one global
scale. Its unit is its own, "model" (lab/core/units.py): never ns, never instructions. The weights
come from published per-instruction tables and are never fitted to the hook ranking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from lab.core.config import DATA

INSN = "insn"  # the plugin's instruction counter


@dataclass(frozen=True)
class Model:
    version: int
    core: str
    base_rate: float
    weights: dict[str, float]
    scale: float = 1.0

    def estimate(self, counts: Mapping[str, float], without: str | None = None) -> float:
        """est_cycles of one event's counts; `without`: that class left out (the ablation)."""
        total = float(counts.get(INSN, 0.0)) * self.base_rate
        total += sum(w * float(counts.get(k, 0.0)) for k, w in self.weights.items() if k != without)
        return total * self.scale

    def parts(self, counts: Mapping[str, float]) -> dict[str, float]:
        """What each term adds (insn and every class), in model cycles."""
        out = {INSN: float(counts.get(INSN, 0.0)) * self.base_rate * self.scale}
        out.update({k: w * float(counts.get(k, 0.0)) * self.scale for k, w in self.weights.items()})
        return out

    def manifest(self) -> dict[str, Any]:
        return {"version": self.version, "core": self.core, "base_rate": self.base_rate, "scale": self.scale,
                "weights": dict(self.weights)}


@cache
def model() -> Model:
    d = yaml.safe_load((DATA / "cost_model.yaml").read_text())
    return Model(int(d["version"]), str(d["core"]), float(d["base_rate"]),
                 {k: float(v["cycles"]) for k, v in d["weights"].items()}, float(d.get("scale", 1.0)))
