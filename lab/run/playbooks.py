"""Playbooks: YAML files naming the suites to run and their parameters, checked on load."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.core.config import ROOT, InputError
from lab.guest.accel import check_name

KNOWN_SUITES = ("hooks", "maps", "tools")


MEMORY_RE = re.compile(r"^([1-9][0-9]*)([KMGT]?)$", re.IGNORECASE)
VM_KEYS = ("cpus", "memory", "accel")


@dataclass(frozen=True)
class VmSpec:
    cpus: int = 2
    memory: str = "2G"
    accel: str = ""  # kvm | icount | tcg; "" = KVM where it works, else icount (lab/guest/accel.py)

    def __str__(self) -> str:
        return f"{self.cpus} vCPU{'s' if self.cpus != 1 else ''}, {self.memory} memory"

    def with_accel(self, accel: str) -> VmSpec:
        """The same size with `accel` asked for (a task's --accel wins over the playbook's vm.accel)."""
        return VmSpec(self.cpus, self.memory, accel or self.accel)

    def same_size(self, other: VmSpec) -> bool:
        return self.cpus == other.cpus and memory_bytes(self.memory) == memory_bytes(other.memory)


def memory_bytes(memory: str) -> int:
    """QEMU's -m size in bytes: 2G, 512M, 1048576K; a bare number is MiB."""
    m = MEMORY_RE.match(str(memory).strip())
    if not m:
        raise ValueError(memory)
    return int(m.group(1)) << {"": 20, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()]


def vm_spec(cpus: object = 2, memory: object = "2G", accel: object = "") -> VmSpec:
    """A checked VmSpec: cpus a positive integer, memory a size like 2G or 512M (a bare integer is MiB).
    Raises ValueError with what is wrong."""
    problems = []
    if isinstance(cpus, str) and cpus.strip().isdigit():
        cpus = int(cpus)
    if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
        problems.append(f"cpus must be a positive integer, not {cpus!r}")
    if isinstance(memory, int) and not isinstance(memory, bool) and memory > 0:
        memory = f"{memory}M"
    if not isinstance(memory, str) or not MEMORY_RE.match(memory.strip()):
        problems.append(f"memory must be a size like 2G or 512M, not {memory!r}")
    try:
        accel = check_name(str(accel or ""), "accel")
    except ValueError as e:
        problems.append(str(e))
    if problems:
        raise ValueError("; ".join(problems))
    return VmSpec(cpus=int(cpus), memory=str(memory).strip().upper(), accel=str(accel))  # type: ignore[arg-type]


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


TOP_KEYS = ("name", "description", "vm", "suites", "kernels", "targets", "repetitions", "icount")


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
    if not isinstance(vm, dict):
        raise InputError(f"playbook {path}: 'vm' must be a mapping with {' and/or '.join(VM_KEYS)}, not {vm!r}")
    unknown = sorted(str(k) for k in vm if k not in VM_KEYS)
    if unknown:
        raise InputError(f"playbook {path}: unknown key(s) in 'vm': {', '.join(unknown)}; known: {', '.join(VM_KEYS)}")
    try:
        vmspec = vm_spec(**vm)
    except ValueError as e:
        raise InputError(f"playbook {path}: bad 'vm' section: {e}") from None
    return Playbook(name=str(data.get("name", path.stem)), path=path,
                    suites={k: dict(v or {}) for k, v in suites.items()}, vm=vmspec,
                    icount={k: dict(v or {}) for k, v in icount.items()},
                    description=str(data.get("description", "")), **_matrix_fields(path, data))
