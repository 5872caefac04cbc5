"""A guest's size and accelerator as a playbook or a task asks for them (vm: {cpus, memory, accel, mitigations}),
checked: VmSpec, vm_spec() and memory_bytes(). The run layer's playbooks re-export them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.agent.mitigations import check as mitigation_setting
from lab.guest.accel import check_name

MEMORY_RE = re.compile(r"^([1-9][0-9]*)([KMGT]?)$", re.IGNORECASE)


@dataclass(frozen=True)
class VmSpec:
    cpus: int = 2
    memory: str = "2G"
    accel: str = ""  # kvm | icount | tcg; "" = KVM where it works, else icount (lab/guest/accel.py)
    packages: tuple[str, ...] = ()  # Debian packages added to the root image (playbook image.packages)
    mitigations: str = ""  # "" = the kernel's default, "off" = mitigations=off (lab/agent/mitigations.py)

    def __str__(self) -> str:
        return f"{self.cpus} vCPU{'s' if self.cpus != 1 else ''}, {self.memory} memory"

    def with_accel(self, accel: str) -> VmSpec:
        """The same size with `accel` asked for (a task's --accel wins over the playbook's vm.accel)."""
        return VmSpec(self.cpus, self.memory, accel or self.accel, self.packages, self.mitigations)

    def same_size(self, other: VmSpec) -> bool:
        return self.cpus == other.cpus and memory_bytes(self.memory) == memory_bytes(other.memory)


def memory_bytes(memory: str) -> int:
    """QEMU's -m size in bytes: 2G, 512M, 1048576K; a bare number is MiB."""
    m = MEMORY_RE.match(str(memory).strip())
    if not m:
        raise ValueError(memory)
    return int(m.group(1)) << {"": 20, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()]


def vm_spec(cpus: object = 2, memory: object = "2G", accel: object = "", mitigations: object = "") -> VmSpec:
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
    try:
        mitigations = mitigation_setting(mitigations, "mitigations")
    except ValueError as e:
        problems.append(str(e))
    if problems:
        raise ValueError("; ".join(problems))
    return VmSpec(cpus=int(cpus), memory=str(memory).strip().upper(), accel=str(accel),  # type: ignore[arg-type]
                  mitigations=str(mitigations))
