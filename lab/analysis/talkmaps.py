"""The talk's memlock example (lab/data/talk_maps.yaml) beside the lab's measured and predicted
figures: `inv results.memlock [RUN...]` or `python -m lab.analysis.talkmaps results/<run>/maps.jsonl`.

Host side: it reads YAML, so it lives outside the stdlib-only guest agent; the model it applies is
the agent's own (lab/agent/maps/memlock.py), so guest rows and this comparison never disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from lab.agent.maps.memlock import SIZES_6_12, implied_setup, kernel_version, predict
from lab.core.config import DATA

TALK_MAPS = DATA / "talk_maps.yaml"


def load_talk() -> dict[str, Any]:
    return yaml.safe_load(TALK_MAPS.read_text())


def talk_comparison(rows: list[dict[str, Any]], talk: dict[str, Any]) -> list[str]:
    """Lines comparing the talk's memlock figures with the talk-example memory rows of maps.jsonl
    files, the model for each kernel, and the model for the talk's stated setup."""
    ex = talk["memlock_example"]
    setup = talk["talk_setup"]
    ver = kernel_version(str(setup["kernel"]))
    lines = [f"talk: hash key {ex['key_size']} B value {ex['value_size']} B max_entries {ex['max_entries']}; "
             f"stated setup kernel {setup['kernel']}, {setup['cpus']} CPUs"]
    for flags, fig in sorted(ex["memlock"].items()):
        p = predict(ver, ex["map_type"], ex["key_size"], ex["value_size"], ex["max_entries"], int(flags),
                    int(setup["cpus"]), 0)
        lines.append(f"  flags 0x{int(flags):x}: talk {fig} B; model for the stated setup {p.bytes} B ({p.regime})")
    for r in rows:
        if r.get("key_space") != "talk" or r.get("operation") != "memory" or r.get("status") != "ok":
            continue
        fig = ex["memlock"].get(r["flags"], ex["memlock"].get(str(r["flags"])))
        lines.append(f"  {r['kernel']} ({r['accelerator']}, {r['vcpus']} vCPUs) flags 0x{r['flags']:x} "
                     f"live {r['live_entries']}: measured {r['memlock_measured']} B, "
                     f"predicted {r['memlock_predicted']} B, talk {fig} B")
    sol = implied_setup(ex["memlock"][0], ex["memlock"][1], ex["max_entries"], ex["key_size"], ex["value_size"])
    if sol:
        s = sol[0]
        others = sol[1:]
        lines.append(f"  one solution consistent with the talk's figures (6.4+ map_mem_usage model): possible CPUs "
                     f"{s['possible_cpus']}, {s['live_entries']} live entries in the 0x1 map, sizeof(struct bpf_htab) "
                     f"{s['sizeof_bpf_htab']} (Debian 6.12: {SIZES_6_12['bpf_htab']}); "
                     f"{len(others)} other integer solution{'s' if len(others) != 1 else ''} fit as well"
                     + (f" (possible CPUs {', '.join(str(o['possible_cpus']) for o in others)}, with "
                        f"sizeof(struct bpf_htab) from {min(o['sizeof_bpf_htab'] for o in others)} to "
                        f"{max(o['sizeof_bpf_htab'] for o in others)}): this one is the closest to a real "
                        "kernel's struct size, not the only fit" if others else ""))
    else:
        lines.append("  no setup of the 6.4+ map_mem_usage model gives both of the talk's figures")
    return lines


def read_rows(paths: list[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        with open(path) as f:
            rows += [json.loads(ln) for ln in f if ln.startswith("{")]
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    print("\n".join(talk_comparison(read_rows([Path(a) for a in argv]), load_talk())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
