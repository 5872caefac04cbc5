"""Which accelerator to use: KVM only when it really runs a guest here, otherwise TCG.

On nested machines without VMX/SVM, /dev/kvm opens and KVM_CREATE_VM succeeds, yet guests die
with "KVM internal error. Suberror: 1 ... emulation failure". So we probe for real, in two steps:
1. a tiny real-mode guest through the KVM ioctls (port I/O, an MMIO write, HLT): fails fast
   where KVM is absent or broken outright;
2. the lab's own kernel booted under KVM with no root until it panics on purpose: a real kernel
   reaching its panic proves KVM runs it; "KVM internal error" proves it does not (on this
   workplace's machines step 1 passes and step 2 fails in about a second).
The verdict is cached per host boot (boot_id), so each later lab boot pays nothing.
"""

from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import json
import mmap
import os
import select
import signal
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.core import units

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_GET_VCPU_MMAP_SIZE = 0xAE04
KVM_CREATE_VCPU = 0xAE41
KVM_SET_USER_MEMORY_REGION = 0x4020AE46
KVM_RUN = 0xAE80
KVM_GET_SREGS = 0x8138AE83
KVM_SET_SREGS = 0x4138AE84
KVM_SET_REGS = 0x4090AE82
EXIT_NAMES = {2: "IO", 5: "HLT", 6: "MMIO", 8: "SHUTDOWN", 9: "FAIL_ENTRY", 17: "INTERNAL_ERROR"}

# Real-mode code at guest physical 0x1000:
#   mov al, 0x42 ; out 0x10, al ; mov [0x8000], al (unmapped: MMIO, needs emulation) ; hlt
PROBE_CODE = bytes([0xB0, 0x42, 0xE6, 0x10, 0xA2, 0x00, 0x80, 0xF4])


NAMES = ("kvm", "icount", "tcg")
# Instruction counting: while a vCPU runs, the guest's clocks advance one nanosecond per guest
# instruction executed (shift=0), never with the host's time. sleep=on: an idle guest waits for its
# next timer in real time. With sleep=off it jumps there at once, so every wait on the host (an SSH
# client's next packet, a disk completion) lets guest time race ahead: sshd's login grace time and
# the agent's timeouts expired within seconds of real time (seen here). Counts of busy loops are
# the same either way (kernel_batch on 6.12: 109.1 / 157.3 / 315.3 / 380.4 / 661.7 with both).
# align stays off. What changes the kernel's code paths or the order of events is
# pinned: the CPU model, no KASLR, the RTC on the virtual clock, and RDRAND's seed.
ICOUNT_QEMU = "-icount shift=0,sleep=on -rtc clock=vm -seed 1"
ICOUNT_APPEND = "nokaslr"
ICOUNT_CPU = "max"  # QEMU's TCG model: pinned per QEMU version (the manifest records the version)
# One vCPU: under icount all vCPUs run in one host thread, one after another, so a second vCPU
# adds no parallelism, only its own instructions into the guest clock; and 5.10 and 6.1 hung at
# "smp: Bringing up secondary CPUs" under icount with two (6.12 did not), with either sleep mode
# and CPU model. What needs parallel CPUs is not measurable in instructions anyway.
ICOUNT_ONE_CPU = ("all vCPUs would run in one host thread, one after another; 5.10 and 6.1 hang "
                  "bringing up a second vCPU under icount")


def guest_size(spec, accelerator: str):
    """The guest size a lab of `accelerator` boots with: `spec`, but one vCPU under icount (a
    lab/guest/size.py's VmSpec; its accel unchanged)."""
    if accelerator == "icount" and spec.cpus != 1:
        return dataclasses.replace(spec, cpus=1)
    return spec


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm", "icount" (TCG with instruction counting) or "tcg"
    why: str

    @property
    def unit(self) -> str:
        """What the guest's clock counts: guest instructions under icount, else nanoseconds."""
        return units.of({"accelerator": self.name})

    def qemu_flag(self) -> list[str]:
        """vng flags. TCG runs single-threaded (one host thread for every vCPU) unless
        LAB_TCG_THREAD=multi: with a thread per vCPU, a vCPU can run a stale translation of kernel
        text another vCPU just patched (text_poke_bp: int3, then the new bytes), and a guest whose
        static key in __schedule flips while a perf event is opened dies with "Oops: int3"."""
        if self.name == "kvm":
            return []
        if self.name == "icount":  # one thread for every vCPU: MTTCG is refused with icount
            return ["--disable-kvm", f"--append={ICOUNT_APPEND}",
                    f"--qemu-opts=-accel tcg,thread=single -cpu {ICOUNT_CPU} {ICOUNT_QEMU}"]
        thread = os.environ.get("LAB_TCG_THREAD", "single")
        return ["--disable-kvm", f"--qemu-opts=-accel tcg,thread={thread}"]


# What an instruction count depends on, read in the guest for the manifest: its kernel command line,
# CPU model, a digest of its CPU flags, and its TSC calibration (clock_gettime goes through it: at
# shift=0 the TSC counts instructions, a calibrated ~1 GHz turns them into "ns").
ICOUNT_FACTS_CMD = ("cat /proc/cmdline; grep -m1 '^model name' /proc/cpuinfo; "
                    "grep -m1 '^flags' /proc/cpuinfo | md5sum; "
                    "dmesg | grep -m1 -o 'tsc: Refined TSC clocksource calibration: .*' || "
                    "dmesg | grep -m1 -o 'tsc: Detected .*'")


def icount_facts(guest_output: str) -> dict[str, object]:
    """The manifest's icount facts from ICOUNT_FACTS_CMD's output, with the options and the QEMU
    version (runs compared in instructions must share it)."""
    lines = guest_output.splitlines() + ["", "", "", ""]
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=False)
    return {"icount": ICOUNT_QEMU, "qemu_version": (qemu.stdout.splitlines() or ["unknown"])[0],
            "guest_cmdline": lines[0].strip(), "cpu_model_guest": lines[1].split(":", 1)[-1].strip(),
            "cpu_flags_md5": lines[2].split()[0] if lines[2].split() else None, "tsc": lines[3].strip() or None}


def probe_kvm(dev: str = "/dev/kvm") -> tuple[bool, str]:
    """Run a tiny guest under KVM. Returns (works, explanation)."""
    if not os.path.exists(dev):
        return False, f"{dev} does not exist"
    try:
        kvm = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return False, f"cannot open {dev}: {e.strerror}"
    fds = [kvm]
    try:
        if fcntl.ioctl(kvm, KVM_GET_API_VERSION) != 12:
            return False, "unexpected KVM API version"
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        fds.append(vm)
        mem = mmap.mmap(-1, 0x4000, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        mem[0x1000:0x1000 + len(PROBE_CODE)] = PROBE_CODE
        addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
        region = struct.pack("IIQQQ", 0, 0, 0, 0x4000, addr)
        fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, region)
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
        fds.append(vcpu)
        size = fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE)
        run = mmap.mmap(vcpu, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        sregs = bytearray(312)
        fcntl.ioctl(vcpu, KVM_GET_SREGS, sregs)
        # cs: base 0, selector 0 (struct kvm_segment: base u64, limit u32, selector u16, ...)
        struct.pack_into("Q", sregs, 0, 0)
        struct.pack_into("H", sregs, 12, 0)
        fcntl.ioctl(vcpu, KVM_SET_SREGS, bytes(sregs))
        regs = bytearray(144)  # rax..r15 (16 x u64), rip, rflags
        struct.pack_into("Q", regs, 128, 0x1000)
        struct.pack_into("Q", regs, 136, 0x2)
        fcntl.ioctl(vcpu, KVM_SET_REGS, bytes(regs))
        seen = []
        for _ in range(5):
            try:
                fcntl.ioctl(vcpu, KVM_RUN, 0)
            except OSError as e:
                return False, f"KVM_RUN failed: {e.strerror}"
            reason = struct.unpack_from("I", run, 8)[0]
            seen.append(EXIT_NAMES.get(reason, str(reason)))
            if reason == 5:
                break
            if reason not in (2, 6):
                sub = struct.unpack_from("I", run, 32)[0]
                return False, (f"a test guest died with KVM exit {seen[-1]} (suberror {sub}) after "
                               f"{' -> '.join(seen)}: nested virtualization without a working emulator")
        if seen != ["IO", "MMIO", "HLT"]:
            return False, f"unexpected KVM exits: {' -> '.join(seen)}"
        return True, "a test guest ran port I/O, MMIO and HLT under KVM"
    except OSError as e:
        return False, f"KVM ioctl failed: {e.strerror}"
    finally:
        for fd in reversed(fds):
            os.close(fd)


def probe_kvm_boot(vmlinuz: Path, timeout: float = 30.0) -> tuple[bool, str]:
    """Boot `vmlinuz` under KVM with no root and wait for its deliberate panic."""
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-kernel", str(vmlinuz),
           "-append", "console=ttyS0 panic=-1", "-display", "none", "-serial", "stdio", "-no-reboot",
           "-monitor", "none"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout
        fd = proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                out += chunk
            if b"KVM internal error" in out:
                line = out[out.index(b"KVM internal error"):].split(b"\n", 1)[0].decode(errors="replace")
                return False, f"the lab kernel died under KVM: {line.strip()}"
            if b"Kernel panic" in out or b"Unable to mount root" in out:
                return True, "the lab kernel booted under KVM to its deliberate no-root panic"
            if proc.poll() is not None and not ready:
                break
        tail = out.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return False, f"the lab kernel did not boot under KVM within {timeout:.0f} s ({tail[0][:120]})"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def check_name(name: str, where: str) -> str:
    """`name` if it is an accelerator the lab knows ("" = choose), else ValueError saying what to use."""
    name = (name or "").strip().lower()
    if name not in ("", "auto", *NAMES):
        raise ValueError(f"{where}: unknown accelerator {name!r}; use one of {', '.join(NAMES)} "
                         "(or leave it out: KVM where it works, else icount)")
    return "" if name == "auto" else name


def asked(name: str, where: str) -> str:
    """check_name for a name the user gave (--accel, LAB_ACCEL): a bad one is InputError (exit 2)."""
    from lab.core.config import InputError

    try:
        return check_name(name, where)
    except ValueError as e:
        raise InputError(str(e)) from None


def choose(vmlinuz: Path | None = None, cache: Path | None = None, force: str | None = None) -> Accel:
    """KVM if it really boots a kernel here, else TCG with instruction counting (icount). `force`
    (a task's --accel, a playbook's vm.accel) or LAB_ACCEL names one: kvm, icount or tcg."""
    where = "--accel" if force else "LAB_ACCEL"
    force = asked(force or os.environ.get("LAB_ACCEL", ""), where)
    if force == "tcg":
        return Accel("tcg", f"plain TCG asked for ({where}=tcg): timings check the pipeline, they decide nothing")
    if force == "icount":
        return Accel("icount", f"instruction counting asked for ({where}=icount): figures in guest instructions")
    if force == "kvm":
        return Accel("kvm", f"KVM forced ({where}=kvm)")
    verdict_file = cache / "accel.json" if cache else None
    if verdict_file and verdict_file.exists():
        v = json.loads(verdict_file.read_text())
        if v.get("boot_id") == _boot_id() and v.get("name") in ("kvm", "icount"):
            return Accel(v["name"], v["why"] + " (probed earlier this host boot)")
    works, why = probe_kvm()
    if works and vmlinuz is not None:
        works, why = probe_kvm_boot(vmlinuz)
    acc = Accel("kvm", f"KVM works: {why}") if works else Accel(
        "icount", f"KVM not usable ({why}); using TCG with instruction counting, figures in guest instructions "
        "(LAB_ACCEL=tcg or --accel tcg for plain TCG)")
    if verdict_file and vmlinuz is not None:
        verdict_file.parent.mkdir(parents=True, exist_ok=True)
        verdict_file.write_text(json.dumps({"boot_id": _boot_id(), "name": acc.name, "why": acc.why}))
    return acc


if __name__ == "__main__":
    import sys

    a = choose(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(a.name, "-", a.why)
