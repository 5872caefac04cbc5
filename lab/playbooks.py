"""Playbooks: YAML files naming the suites to run and their parameters, checked on load."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import ROOT, LabError

KNOWN_SUITES = ("hooks", "maps", "tools")


@dataclass(frozen=True)
class VmSpec:
    cpus: int = 2
    memory: str = "2G"


@dataclass(frozen=True)
class Playbook:
    name: str
    path: Path
    suites: dict[str, dict[str, Any]]
    vm: VmSpec = field(default_factory=VmSpec)
    description: str = ""


def resolve(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    cand = ROOT / "playbooks" / f"{name_or_path}.yaml"
    if cand.exists():
        return cand
    known = sorted(x.stem for x in (ROOT / "playbooks").glob("*.yaml"))
    raise LabError(f"no playbook {name_or_path!r}: give a YAML file path or one of {', '.join(known)}")


def load(name_or_path: str) -> Playbook:
    path = resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise LabError(f"playbook {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise LabError(f"playbook {path} must be a mapping with a 'suites' key")
    suites = data.get("suites")
    if not isinstance(suites, dict) or not suites:
        raise LabError(f"playbook {path}: 'suites' must map suite names ({', '.join(KNOWN_SUITES)}) "
                       "to parameter mappings")
    for name, params in suites.items():
        if name not in KNOWN_SUITES:
            raise LabError(f"playbook {path}: unknown suite {name!r}; known: {', '.join(KNOWN_SUITES)}")
        if params is not None and not isinstance(params, dict):
            raise LabError(f"playbook {path}: parameters of suite {name!r} must be a mapping")
        problems = importlib.import_module(f"lab.agent.{name}").check(params or {})
        if problems:
            raise LabError(f"playbook {path}, suite {name}: " + "; ".join(problems))
    vm = data.get("vm") or {}
    try:
        vmspec = VmSpec(**vm)
    except TypeError as e:
        raise LabError(f"playbook {path}: bad 'vm' section: {e}") from None
    return Playbook(name=str(data.get("name", path.stem)), path=path,
                    suites={k: dict(v or {}) for k, v in suites.items()}, vm=vmspec,
                    description=str(data.get("description", "")))
