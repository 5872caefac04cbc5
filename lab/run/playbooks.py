"""Playbooks: YAML files naming the suites to run and their parameters, checked on load."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.agent import schema
from lab.core.config import ROOT, InputError
from lab.guest.images import check_packages
from lab.guest.size import VmSpec, memory_bytes, vm_spec  # noqa: F401 (re-exported for the run layer)
from lab.run import sizes

KNOWN_SUITES = tuple(schema.SUITES)  # the registry of suites: lab/agent/schema.py


VM_KEYS = ("cpus", "memory", "accel", "mitigations")


@dataclass(frozen=True)
class Playbook:
    name: str
    path: Path
    suites: dict[str, dict[str, Any]]
    vm: VmSpec = field(default_factory=VmSpec)
    description: str = ""
    kernels: tuple[str, ...] = ()  # the matrix: kernel aliases or paths (lab guests)
    targets: tuple[str, ...] = ()  # and targets without a lab VM: host, ssh://user@host[:port]
    repetitions: int = 1  # runs per kernel/target
    # per-suite parameters that replace the suite's when the guest counts instructions (icount):
    # exact counts need few trials, and every emulated instruction costs host time
    icount: dict[str, dict[str, Any]] = field(default_factory=dict)

    def params(self, suite: str, accelerator: str) -> dict[str, Any]:
        """The suite's parameters on a target of `accelerator`: under icount, with the playbook's
        `icount:` overrides applied."""
        base = dict(self.suites.get(suite) or {})
        if accelerator == "icount":
            base.update(self.icount.get(suite) or {})
        return base

    @property
    def matrix(self) -> list[str]:
        """Every kernel and target of the playbook's matrix, in order (empty: not a matrix)."""
        return [*self.kernels, *self.targets]


TOP_KEYS = ("name", "description", "vm", "image", "suites", "kernels", "targets", "repetitions", "icount")


def _matrix_fields(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("kernels", "targets"):
        v = data.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str | int | float) for x in v):
            raise InputError(f"playbook {path}: '{key}' must be a list of strings, e.g. {key}: "
                           + ('["5.10", "6.12", latest]' if key == "kernels" else "[host, ssh://root@box:22]"))
        out[key] = tuple(str(x) for x in v)
    for t in out["targets"]:
        if t != "host" and not t.startswith("ssh://"):
            raise InputError(f"playbook {path}: target {t!r} is neither 'host' nor ssh://[user@]host[:port] "
                           "(kernels to boot in a lab VM go under 'kernels:')")
    if "host" in out["kernels"]:
        raise InputError(f"playbook {path}: 'host' is a target, not a kernel: move it under 'targets:'")
    reps = data.get("repetitions", 1)
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
        raise InputError(f"playbook {path}: 'repetitions' must be a whole number >= 1, not {reps!r}")
    out["repetitions"] = reps
    return out


def resolve(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    cand = ROOT / "playbooks" / f"{name_or_path}.yaml"
    if cand.exists():
        return cand
    known = sorted(x.stem for x in (ROOT / "playbooks").glob("*.yaml"))
    raise InputError(f"no playbook {name_or_path!r}: give a YAML file path or one of {', '.join(known)}")


def load(name_or_path: str) -> Playbook:
    path = resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"playbook {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"playbook {path} must be a mapping with a 'suites' key")
    unknown_top = sorted(str(k) for k in data if k not in TOP_KEYS)
    if unknown_top:
        raise InputError(f"playbook {path}: unknown key(s) {', '.join(unknown_top)}; known: {', '.join(TOP_KEYS)}")
    suites = data.get("suites")
    if not isinstance(suites, dict) or not suites:
        raise InputError(f"playbook {path}: 'suites' must map suite names ({', '.join(KNOWN_SUITES)}) "
                       "to parameter mappings")
    for name, params in suites.items():
        if name not in KNOWN_SUITES:
            raise InputError(f"playbook {path}: unknown suite {name!r}; known: {', '.join(KNOWN_SUITES)}")
        if params is not None and not isinstance(params, dict):
            raise InputError(f"playbook {path}: parameters of suite {name!r} must be a mapping")
        problems = importlib.import_module(f"lab.agent.{name}.suite").check(params or {})
        if problems:
            raise InputError(f"playbook {path}, suite {name}: " + "; ".join(problems))
    icount = data.get("icount") or {}
    if not isinstance(icount, dict) or not all(isinstance(v, dict | None) for v in icount.values()):
        raise InputError(f"playbook {path}: 'icount' must map suite names to parameter overrides, e.g. "
                         "icount: {hooks: {batch_trials: 5}}")
    for name, over in icount.items():
        if name not in suites:
            raise InputError(f"playbook {path}: 'icount' overrides suite {name!r}, which 'suites' does not run")
        problems = importlib.import_module(f"lab.agent.{name}.suite").check(dict(suites[name] or {}, **(over or {})))
        if problems:
            raise InputError(f"playbook {path}, icount overrides of suite {name}: " + "; ".join(problems))
    vm = data.get("vm") or {}
    merged = {k: dict(v or {}, **(icount.get(k) or {})) for k, v in suites.items()}  # as run under icount
    too_big = list(dict.fromkeys(sizes.check(suites, vm if isinstance(vm, dict) else {}, data.get("repetitions"))
                                 + sizes.check(merged, {}, None)))
    if too_big:
        raise InputError(f"playbook {path}: " + "; ".join(too_big) + " (bounds: lab/data/run_sizes.yaml)")
    if not isinstance(vm, dict):
        raise InputError(f"playbook {path}: 'vm' must be a mapping with {' and/or '.join(VM_KEYS)}, not {vm!r}")
    unknown = sorted(str(k) for k in vm if k not in VM_KEYS)
    if unknown:
        raise InputError(f"playbook {path}: unknown key(s) in 'vm': {', '.join(unknown)}; known: {', '.join(VM_KEYS)}")
    try:
        vmspec = vm_spec(**vm)
    except ValueError as e:
        raise InputError(f"playbook {path}: bad 'vm' section: {e}") from None
    image = data.get("image") or {}
    if not isinstance(image, dict) or sorted(image) not in ([], ["packages"]):
        raise InputError(f"playbook {path}: 'image' takes packages only, e.g. image: {{packages: [bpftrace]}}")
    try:  # Debian packages added to the lab's root image (cached apart: lab/guest/images.py)
        vmspec = dataclasses.replace(vmspec, packages=check_packages(image.get("packages") or []))
    except ValueError as e:
        raise InputError(f"playbook {path}: {e}") from None
    return Playbook(name=str(data.get("name", path.stem)), path=path,
                    suites={k: dict(v or {}) for k, v in suites.items()}, vm=vmspec,
                    icount={k: dict(v or {}) for k, v in icount.items()},
                    description=str(data.get("description", "")), **_matrix_fields(path, data))
