"""The VM engine: virtme-ng (`vng --run KERNEL --root ROOT`) with a user-mode NIC whose SSH port
is forwarded to 127.0.0.1 only. Processes are started in their own session and tracked by identity
(host boot id, pid, start time, command line), never by a bare pid: stopping signals only processes
of a session one of whose members still matches a recorded identity.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.agent import scratch
from lab.guest.accel import Accel
from lab.guest.images import Image
from lab.kernels.catalog import Kernel

GUEST_DIR = "/mnt"  # where the lab's own files (init script, sshd config, keys) appear in the guest

INIT_SH = """#!/bin/sh
# Lab guest init: the NIC behind the forwarded port (the longest step: a module load and its
# set-up) runs in the background while sshd starts (it binds 0.0.0.0 before any address exists);
# sshd then stays in the foreground.
up() { echo "lab-guest: $(cut -d' ' -f1 /proc/uptime) s: $1"; }
up "init script"
(
  modprobe virtio_net 2>/dev/null
  for i in /sys/class/net/*; do
    n=$(basename "$i"); [ "$n" = lo ] && continue
    printf 'link set lo up\nlink set %s up\naddr add 10.0.2.15/24 dev %s\nroute add default via 10.0.2.2\n' \
      "$n" "$n" | ip -batch -   # one exec: every exec is slow in an emulated guest
    break
  done
  up "network configured"
  # let the map suite measure real memory in a child memory cgroup (cgroup v2)
  echo +memory > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
) &
mkdir -p /run/sshd
# virtme-ng-init binds a shadow file with every account locked ('!') over the image's; sshd
# refuses locked accounts even for key logins, so uncover the image's (root is key-only there)
umount /etc/shadow 2>/dev/null || {
  sed 's/^root:[^:]*:/root:ssh-key-only:/' /etc/shadow > /run/lab-shadow && mount --bind /run/lab-shadow /etc/shadow
}
up "sshd starting"
# -r: no re-exec of sshd per connection (saves an exec over 9p under emulation).
# sshd is also the guest's reaper: pid 1 (virtme-ng-init) waits only for this script, so orphans
# (the helpers and tools of an agent that was killed) would stay zombies under it. perl (always in
# Debian) sets PR_SET_CHILD_SUBREAPER (prctl 36, x86-64 syscall 157), which exec keeps: orphans
# below sshd become its children, and its SIGCHLD handler waits for any child.
exec perl -e 'syscall(157, 36, 1) == 0 or print STDERR "lab-guest: no subreaper: $!\n"; exec @ARGV or die "$!"' \
  /usr/sbin/sshd -D -e -r -f {guest}/sshd_config
"""

SSHD_CONFIG = """Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
AuthorizedKeysFile {guest}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
UseDNS no
PrintMotd no
Subsystem sftp internal-sftp
"""


@dataclass(frozen=True)
class VmSpec:
    cpus: int
    memory: str
    port: int
    name: str


def write_guest_files(guest_dir: Path, authorized_key: str) -> None:
    guest_dir.mkdir(parents=True, exist_ok=True)
    (guest_dir / "init.sh").write_text(INIT_SH.replace("{guest}", GUEST_DIR))
    (guest_dir / "sshd_config").write_text(SSHD_CONFIG.replace("{guest}", GUEST_DIR))
    (guest_dir / "authorized_keys").write_text(authorized_key.strip() + "\n")


def vng_bin() -> str:
    return str(Path(sys.executable).with_name("vng"))


SCRATCH_LABEL = scratch.SCRATCH_LABEL.decode()  # the tool suite finds the disk by this ext4 label
SCRATCH_BYTES = 256 << 20


def make_scratch_disk(path: Path) -> Path:
    """A sparse ext4 image, made once per lab on the host (mkfs.ext4 from e2fsprogs, which every
    Debian has): a real block device in the guest, whose root is 9p and /tmp an overlay on tmpfs."""
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.truncate(SCRATCH_BYTES)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-L", SCRATCH_LABEL, str(tmp)], check=True,
                           stdout=subprocess.DEVNULL)
            tmp.rename(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def vng_command(kernel: Kernel, image: Image, accel: Accel, spec: VmSpec, guest_dir: Path,
                exec_cmd: str | None = None, disks: tuple[Path, ...] = (), append: tuple[str, ...] = (),
                qemu_opts: tuple[str, ...] = ()) -> list[str]:
    """The virtme-ng command line. With exec_cmd=None the guest runs the lab's sshd init. Each of
    `disks` is attached over virtio-blk (its driver is a module: nothing probes it until loaded).
    `append`: more kernel arguments (mitigations=off); `qemu_opts`: more QEMU options (a TCG plugin)."""
    net = f"-netdev user,id=lab,hostfwd=tcp:127.0.0.1:{spec.port}-:22 -device virtio-net-pci,netdev=lab"
    cmd = [vng_bin(), "--verbose", "--run", str(kernel.vmlinuz), "--root", str(image.root), "--force-9p",
           "--cpus", str(spec.cpus), "--memory", spec.memory, "--name", spec.name,
           *accel.qemu_flag()]
    cmd += [f"--append={a}" for a in append] + [f"--qemu-opts={o}" for o in qemu_opts]
    for d in disks:
        cmd += ["--disk", str(d)]
    if exec_cmd is None:
        cmd += [f"--rodir={GUEST_DIR}={guest_dir}", f"--qemu-opts={net}", "--exec", f"sh {GUEST_DIR}/init.sh"]
    else:
        cmd += ["--exec", exec_cmd]
    return cmd


def launch(cmd: list[str], log: Path) -> int:
    """Start the VM in its own session (so its whole tree can be found and stopped). Returns its pid."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    with log.open("wb") as out:
        out.write(("$ " + shlex.join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=str(log.parent))
    return proc.pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def session_pids(sid: int) -> list[int]:
    """Every live process in session `sid` (the VM's launcher, virtme-run, QEMU)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(int(entry))
            if f and f[0] != "Z" and _int_field(f, 3) == sid:
                pids.append(int(entry))
    return pids


def qemu_pid(sid: int) -> int | None:
    for pid in session_pids(sid):
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("qemu-system"):
                return pid
        except OSError:
            continue
    return None


def stop(sid: int, timeout: float = 10.0, known: set[tuple[int, int]] | None = None) -> None:
    """Stop the VM session we started: TERM its processes by pid, then KILL what is left; reap.
    With `known` ({(pid, start time)} of members verified as ours), each round signals the session
    only while one of its members is a known one (a session id cannot be reused while any member
    lives, so the others are ours too); a session whose id now belongs to someone else is left alone."""
    known = set(known) if known is not None else None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = session_pids(sid)
        if known is not None:
            members = {(p, start_time(p)) for p in pids}
            if not members & known:
                break
            known |= members
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
                if sig == signal.SIGTERM:
                    os.kill(pid, signal.SIGCONT)  # a stopped QEMU (a hung lab) acts on TERM only once resumed
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and session_pids(sid):
            time.sleep(0.1)
    try:  # reap our direct child if it is ours
        os.waitpid(sid, os.WNOHANG)
    except ChildProcessError:
        pass


# Process identity: what tells our process from another one that reuses its pid.

def boot_id() -> str:
    """This boot of the host (pids and start times only mean something within one boot)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (after the command name, which may hold spaces and parens)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _int_field(fields: list[str] | None, i: int) -> int | None:
    """fields[i] of _stat_fields() as an int (3: session id, 19: start time), or None."""
    try:
        return int(fields[i]) if fields else None
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot."""
    return _int_field(_stat_fields(pid), 19)


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []


@dataclass(frozen=True)
class ProcId:
    """One process as recorded in a lab's state."""

    pid: int
    start_time: int
    cmdline: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> ProcId | None:
        st, cmd = start_time(pid), cmdline(pid)
        if st is None or cmd is None:
            return None
        return cls(pid, st, tuple(cmd))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProcId:
        if not isinstance(d.get("pid"), int) or not isinstance(d.get("start_time"), int) \
                or not isinstance(d.get("cmdline"), list):
            raise ValueError(f"bad process record {d!r}")
        return cls(d["pid"], d["start_time"], tuple(str(a) for a in d["cmdline"]))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["cmdline"] = list(self.cmdline)
        return d

    def check(self) -> str | None:
        """None if this pid is still this process; else what it is now."""
        f = _stat_fields(self.pid)
        if f is None or f[0] == "Z":
            return f"pid {self.pid} has exited"
        now = ProcId.of(self.pid)
        if now is None:
            return f"pid {self.pid} has exited"
        if now.start_time != self.start_time:
            return (f"pid {self.pid} is now another process (started at tick {now.start_time}, not "
                    f"{self.start_time}: {shlex.join(now.cmdline)[:80] or '?'})")
        if now.cmdline != self.cmdline:
            return f"pid {self.pid} now runs {shlex.join(now.cmdline)[:80]!r}, not {shlex.join(self.cmdline)[:80]!r}"
        return None


def session_of(pid: int) -> int | None:
    return _int_field(_stat_fields(pid), 3)


def identities(sid: int) -> list[ProcId]:
    """The identity of every live process of session `sid`."""
    return [p for p in (ProcId.of(pid) for pid in session_pids(sid)) if p is not None]


def pids_with_cwd(directory: Path) -> list[int]:
    """Live processes whose working directory is `directory` (a lab's VM runs in its lab directory)."""
    want = str(directory.resolve())
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == want and alive(int(entry)):
                    out.append(int(entry))
            except OSError:
                continue
    return out
