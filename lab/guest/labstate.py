"""A lab's state on disk and the lock around it.

state.json records, beyond the VM's session id, what identifies its processes: the host's boot id
and, per process, its pid, start time (field 22 of /proc/PID/stat) and command line. Nothing is
trusted or signalled until one recorded process still matches (same boot, same start time, same
command line, same session); a state that does not is stale and is reported, never acted on.
A per-lab lock (fcntl.flock on <lab dir>/lock) serialises lab.up, lab.down and lab.forget.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lab.core.config import LabError
from lab.guest import vm
from lab.guest.size import VmSpec

Log = Callable[[str], None]


@dataclass
class LabState:
    name: str
    kernel: dict[str, Any]
    image: str
    image_recipe_hash: str
    accelerator: str
    accelerator_why: str
    port: int
    sid: int  # session id = pid of the launcher; every VM process is in this session
    qemu_pid: int | None
    cpus: int
    memory: str
    started: float
    boot_seconds: float | None = None
    boot_id: str = ""  # /proc/sys/kernel/random/boot_id when the lab was started
    procs: list[dict[str, Any]] = field(default_factory=list)  # vm.ProcId.to_json() of its processes
    host_key: str = ""  # the guest host key pinned at lab.up ("type base64")
    checkout: str = ""  # the checkout that started it
    mitigations: str = ""  # "" = the kernel's default, "off" = booted with mitigations=off
    plugin: dict[str, Any] | None = None  # the TCG event-count plugin it runs under (lab/guest/tcgplugin.py)

    @property
    def release(self) -> str:
        return self.kernel["release"]

    @property
    def spec(self) -> VmSpec:
        return VmSpec(cpus=self.cpus, memory=self.memory, mitigations=self.mitigations)

    def ids(self) -> list[vm.ProcId]:
        return [vm.ProcId.from_json(p) for p in self.procs]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: object) -> LabState:
        """Raises ValueError saying what is wrong with a state that is not this version's."""
        if not isinstance(d, dict):
            raise ValueError(f"not a JSON object but {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        try:
            st = cls(**d)
        except TypeError as e:
            raise ValueError(str(e)) from None
        for name, typ in (("sid", int), ("port", int), ("cpus", int), ("memory", str), ("kernel", dict),
                          ("procs", list), ("boot_id", str)):
            if not isinstance(getattr(st, name), typ) or isinstance(getattr(st, name), bool):
                raise ValueError(f"field {name} is {getattr(st, name)!r}, not {typ.__name__}")
        if "release" not in st.kernel:
            raise ValueError("field kernel has no release")
        st.ids()  # raises ValueError on a bad process record
        return st


@dataclass
class Inspection:
    """What a lab's state file says, checked against the running system.
    kind: none (no state) | up (a recorded process still is ours) | exited (its processes are gone)
    | stale (a recorded pid is another process now, or the host rebooted) | corrupt (unreadable)."""

    kind: str
    state: LabState | None = None
    why: str = ""


def read(state_file: Path) -> Inspection:
    """The state file parsed (kind none, corrupt, or 'unchecked' with the state)."""
    try:
        text = state_file.read_text()
    except FileNotFoundError:
        return Inspection("none")
    except (OSError, UnicodeDecodeError) as e:
        return Inspection("corrupt", why=f"{type(e).__name__}: {e}")
    try:
        return Inspection("unchecked", LabState.from_json(json.loads(text)))
    except json.JSONDecodeError as e:
        return Inspection("corrupt", why=f"not JSON ({e})")
    except ValueError as e:
        return Inspection("corrupt", why=f"not a lab state this version can read ({e})")


def verify(st: LabState) -> Inspection:
    """Is this state's VM still running? Only a recorded process that is still the same process
    (same boot, start time, command line, session) says yes."""
    if not st.boot_id or not st.procs:
        return Inspection("stale", st, f"it records no process identity, only session id {st.sid} "
                                       "(written by an older lab version)")
    now = vm.boot_id()
    if st.boot_id != now:
        return Inspection("stale", st, f"the host has rebooted since it was written (boot id {st.boot_id[:8]}..., "
                                       f"now {now[:8]}...): its pids mean nothing now")
    problems = []
    for p in st.ids():
        problem = p.check()
        if problem is None:
            sess = vm.session_of(p.pid)
            if sess == st.sid:
                return Inspection("up", st)
            problem = f"pid {p.pid} is in session {sess}, not {st.sid}"
        problems.append(problem)
    if all(x.endswith("has exited") for x in problems):
        return Inspection("exited", st, f"its VM has exited: session {st.sid} is gone")
    return Inspection("stale", st, "; ".join(problems))


def inspect(state_file: Path) -> Inspection:
    insp = read(state_file)
    return verify(insp.state) if insp.kind == "unchecked" and insp.state else insp


def save(state_file: Path, st: LabState) -> None:
    """Write state.json whole: a reader sees the old file or the new one, never half of one."""
    tmp = state_file.with_name(state_file.name + ".tmp")
    try:
        tmp.write_text(json.dumps(st.to_json(), indent=2) + "\n")
        tmp.replace(state_file)
    finally:
        tmp.unlink(missing_ok=True)


class LabBusy(LabError):
    """The lab's lock is held by another lab.up / lab.down."""


def holder(lock_path: Path) -> str:
    try:
        text = lock_path.read_text().strip()
    except OSError:
        text = ""
    pid, _, what = text.partition(" ")
    return f"{what or 'another lab command'} (pid {pid})" if pid.isdigit() else "another lab command"


@contextlib.contextmanager
def locked(lock_path: Path, what: str, log: Log, wait: bool = True) -> Iterator[None]:
    """Hold the lab's lock (fcntl.flock, released when the fd closes, even if this process dies).
    If another command holds it: wait for it (saying so), or raise LabBusy with wait=False."""
    lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = holder(lock_path)
                if not wait:
                    raise LabBusy(f"lab {lock_path.parent.name} is busy: {who} holds its lock") from None
                log(f"lab {lock_path.parent.name}: waiting for {who} to finish ...")
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:  # lab.forget may have removed the file while we waited: lock the one that is there
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what}\n".encode())
        yield
    finally:
        os.close(fd)


def file_tail(path: Path, n: int) -> str:
    """A log's last n non-blank lines, indented (a serial console writes CR LF and blank lines;
    only the file's last 16 KiB is read)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return "    (no serial log)"
    lines = [ln.rstrip() for ln in text.replace("\r", "\n").split("\n") if ln.strip()]
    return "\n".join("    " + ln for ln in lines[-n:])
