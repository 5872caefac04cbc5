"""Labs: one running guest per kernel, each with its own state directory, port and pids.

State lives in <cache>/labs/<name>/ (0700): the lab's SSH key, the pinned known_hosts, the files
the guest mounts read-only (init script, sshd config, authorized key), the serial log, and
state.json (pids, port, kernel, accelerator and why).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import accel as accel_mod
from . import images, kernels, remote, vm
from .config import LabError, Paths
from .playbooks import VmSpec
from .runner import LocalTarget, RemoteTarget, Target

BOOT_TIMEOUT = 240.0  # seconds to SSH under TCG on 2 busy cores; KVM needs a fraction


def lab_name(kernel: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", kernel.strip("/").split("/")[-1]) or "lab"


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

    @property
    def release(self) -> str:
        return self.kernel["release"]


class Lab:
    def __init__(self, name: str, paths: Paths | None = None):
        self.name = name
        self.paths = paths or Paths()
        self.dir = self.paths.labs / name

    # files
    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def serial_log(self) -> Path:
        return self.dir / "serial.log"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def state(self) -> LabState | None:
        if not self.state_file.exists():
            return None
        return LabState(**json.loads(self.state_file.read_text()))

    def save(self, st: LabState) -> None:
        self.state_file.write_text(json.dumps(asdict(st), indent=2) + "\n")

    def running(self) -> LabState | None:
        st = self.state()
        if st and vm.session_pids(st.sid):
            return st
        return None

    def serial_tail(self, n: int = 25) -> str:
        try:
            lines = self.serial_log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no serial log)"
        return "\n".join("    " + line for line in lines[-n:])

    # lifecycle
    def up(self, kernel: str, spec: VmSpec, image: str = "debian-12", timeout: float = BOOT_TIMEOUT,
           log=print) -> LabState:
        st = self.running()
        if st:
            log(f"lab {self.name} is already up: kernel {st.release}, port {st.port}, accelerator {st.accelerator}")
            return st
        k = kernels.resolve(kernel, self.paths)
        img = images.image_for(image, k, self.paths, log=log)
        acc = accel_mod.choose(k.vmlinuz, self.paths.cache)
        log(f"accelerator: {acc.name} ({acc.why})")
        self.dir.mkdir(parents=True, exist_ok=True)
        key = remote.make_keypair(self.dir)
        port = remote.free_port()
        remote.pin_host_key(self.known_hosts, "127.0.0.1", port, img.host_key_pub)
        vm.write_guest_files(self.dir / "guest", key.with_suffix(".pub").read_text())
        scratch = vm.make_scratch_disk(self.dir / "scratch.img")
        cmd = vm.vng_command(k, img, acc, vm.VmSpec(spec.cpus, spec.memory, port, f"lab-{self.name}"),
                             self.dir / "guest", disks=(scratch,))
        t0 = time.monotonic()
        sid = vm.launch(cmd, self.serial_log)
        st = LabState(name=self.name, kernel=k.to_json(), image=img.id, image_recipe_hash=img.recipe.hash,
                      accelerator=acc.name, accelerator_why=acc.why, port=port, sid=sid, qemu_pid=None,
                      cpus=spec.cpus, memory=spec.memory, started=time.time())
        self.save(st)
        log(f"lab {self.name}: booting {k.release} ({k.source}) on {img.id}, serial log {self.serial_log}")

        def problem() -> str | None:
            text = self.serial_log.read_text(errors="replace") if self.serial_log.exists() else ""
            if "Kernel panic" in text:
                return "the guest kernel panicked"
            if not vm.session_pids(sid):
                return "the VM exited before SSH came up"
            return None

        try:
            conn = remote.wait_for_ssh("127.0.0.1", port, key, self.known_hosts, t0 + timeout, problem)
        except (LabError, TimeoutError) as e:
            vm.stop(sid)
            what = f"no SSH within {timeout:.0f} s ({e})" if isinstance(e, TimeoutError) else str(e)
            raise LabError(f"lab {self.name}: boot failed: {what}.\nSerial log {self.serial_log}, last lines:\n"
                           f"{self.serial_tail()}\n(the VM processes were stopped)") from None
        st.boot_seconds = round(time.monotonic() - t0, 2)
        st.qemu_pid = vm.qemu_pid(sid)
        self.save(st)
        conn.close()
        log(f"lab {self.name}: up in {st.boot_seconds:.1f} s (boot to SSH), accelerator {acc.name}, "
            f"ssh root@127.0.0.1 -p {port}")
        return st

    def connection(self):
        st = self.running()
        if not st:
            raise LabError(f"lab {self.name} is not up: run `./labctl lab.up --kernel {self.name}`")
        return remote.connect("127.0.0.1", st.port, self.key, self.known_hosts)

    def target(self) -> RemoteTarget:
        st = self.running()
        if not st:
            raise LabError(f"lab {self.name} is not up")
        info = {
            "kernel_release": st.release,
            "kernel_source": st.kernel["source"],
            "kernel_image": st.kernel["vmlinuz"],
            "image": st.image,
            "image_recipe_hash": st.image_recipe_hash,
            "accelerator_why": st.accelerator_why,
            "boot_seconds": st.boot_seconds,
            "engine": "virtme-ng",
        }
        return RemoteTarget(conn=self.connection(), kernel_alias=self.name, accelerator=st.accelerator,
                            info=info, paths=self.paths)

    def down(self, log=print) -> bool:
        st = self.state()
        if not st:
            log(f"lab {self.name}: no state, nothing to stop")
            return False
        was_up = bool(vm.session_pids(st.sid))
        vm.stop(st.sid)
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "guest", ignore_errors=True)
        log(f"lab {self.name}: {'stopped' if was_up else 'was not running'} (session {st.sid})")
        return was_up


def all_labs(paths: Paths | None = None) -> list[Lab]:
    paths = paths or Paths()
    if not paths.labs.is_dir():
        return []
    return [Lab(d.name, paths) for d in sorted(paths.labs.iterdir()) if d.is_dir()]


def remote_machine(url: str, paths: Paths) -> RemoteTarget:
    """A real machine over SSH: ssh://[user@]host[:port]. Its host key must already be known
    (LAB_SSH_KNOWN_HOSTS, default ~/.ssh/known_hosts); the key is LAB_SSH_KEY or your usual ones."""
    import os
    import urllib.parse

    u = urllib.parse.urlparse(url)
    if not u.hostname:
        raise LabError(f"bad target {url!r}: use ssh://[user@]host[:port]")
    known = Path(os.environ.get("LAB_SSH_KNOWN_HOSTS", Path.home() / ".ssh/known_hosts"))
    key = os.environ.get("LAB_SSH_KEY")
    conn = remote.connect(u.hostname, u.port or 22, Path(key) if key else None, known, user=u.username or "root")
    try:
        release = conn.run("uname -r", hide=True).stdout.strip()
        virt = conn.run("grep -qw hypervisor /proc/cpuinfo", hide=True, warn=True).exited == 0
    except Exception as e:  # noqa: BLE001 - any failure to reach it is the user's to fix
        raise LabError(f"cannot run commands on {url}: {type(e).__name__}: {e} (is its host key in {known}?)") from None
    info = {"kernel_release": release, "kernel_source": f"the running kernel of {u.hostname}",
            "accelerator_why": "the remote machine's own kernel, no lab VM"
                               + (" (it reports a hypervisor: it is itself a VM)" if virt else ""),
            "remote_virtualized": virt, "engine": "ssh"}
    return RemoteTarget(conn=conn, kernel_alias=url, accelerator="host", info=info, paths=paths)


@contextlib.contextmanager
def open_target(kernel: str, spec: VmSpec, paths: Paths) -> Iterator[Target]:
    """The target for `kernel`: this machine for 'host', else a lab guest. A guest booted here is
    stopped afterwards; one that was already up (lab.up) is left running."""
    if kernel == "host":
        yield LocalTarget(paths)
        return
    if kernel.startswith("ssh://"):
        yield remote_machine(kernel, paths)
        return
    lab = Lab(lab_name(kernel), paths)
    booted = lab.running() is None
    if booted:
        lab.up(kernel, spec)
    try:
        yield lab.target()
    finally:
        if booted:
            lab.down()
