"""Labs: one running guest per kernel, each with its own state directory, port and pids.

State lives in <cache>/labs/<checkout>/<name>/ (0700), <checkout> a hash of this checkout's path
(so one checkout's lab.down --all never touches another's labs): the lab's SSH key, the pinned
known_hosts, the files the guest mounts read-only (init script, sshd config, authorized key), the
serial log, the lock, and state.json (identity of its processes, port, kernel, accelerator and why;
see lab/guest/labstate.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from lab.agent import mitigations
from lab.core.config import LabError, Paths
from lab.guest import accel as accel_mod
from lab.guest import images, labstate, remote, tcgplugin, vm
from lab.guest.labstate import Inspection, LabState, Log, file_tail
from lab.kernels import catalog as kernels
from lab.run.playbooks import VmSpec
from lab.run.runner import LocalTarget, RemoteTarget, Target

__all__ = ["BOOT_TIMEOUT", "Lab", "LabState", "all_labs", "lab_name", "open_target", "remote_machine"]

BOOT_TIMEOUT = 240.0  # seconds to SSH under TCG on 2 busy cores; KVM needs a fraction


def lab_name(kernel: str, paths: Paths | None = None) -> str:
    """A lab's name: the catalog alias, or for a kernel given by path, its release (`uname -r`):
    short and stable whatever the file or directory is called."""
    _, entries = kernels.catalog()
    if kernel in entries or "/" not in kernel and not kernel.endswith(".deb") and not Path(kernel).exists():
        return re.sub(r"[^A-Za-z0-9._-]", "_", kernel) or "lab"
    release = kernels.resolve(kernel, paths or Paths()).release
    return re.sub(r"[^A-Za-z0-9._-]", "_", release)[:48] or "lab"


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

    @property
    def lock_file(self) -> Path:
        return self.dir / "lock"

    # state
    def state(self) -> LabState | None:
        """The recorded state, unchecked (None if there is none or it cannot be read)."""
        return labstate.read(self.state_file).state

    def inspect(self) -> Inspection:
        return labstate.inspect(self.state_file)

    def running(self) -> LabState | None:
        """The state, if its VM is verifiably still running (see labstate.verify)."""
        insp = self.inspect()
        return insp.state if insp.kind == "up" else None

    def lock(self, what: str, log: Log = print, wait: bool = True) -> contextlib.AbstractContextManager[None]:
        return labstate.locked(self.lock_file, what, log, wait)

    def save(self, st: LabState) -> None:
        labstate.save(self.state_file, st)

    def _drop_state(self) -> None:
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "guest", ignore_errors=True)

    def clean(self, insp: Inspection, log: Log = print) -> None:
        """Report a state whose VM is not running (exited, stale or corrupt) and remove it. Nothing
        is signalled: its pids may belong to someone else by now. Call with the lock held."""
        if insp.kind == "exited":
            log(f"lab {self.name}: was not running ({insp.why}); its state was removed")
        elif insp.kind in ("stale", "corrupt"):
            msg = (f"lab {self.name}: {insp.kind} state {self.state_file}: {insp.why}. Nothing was signalled; "
                   "the state was removed.")
            if insp.kind == "corrupt":
                left = [p for p in vm.pids_with_cwd(self.dir) if p != os.getpid()]
                if left:
                    what = ", ".join(f"{p} ({' '.join((vm.cmdline(p) or ['?'])[:1])})" for p in left)
                    msg += (f" Processes still running in the lab's directory (not signalled: check them and "
                            f"stop them yourself with kill PID): {what}")
            log(msg)
        else:
            return
        self._drop_state()

    def checked(self, log: Log = print) -> Inspection:
        """Inspect without waiting: a state that is not running is reported and cleaned; a lab whose
        lock is held by a lab.up/lab.down in progress is kind 'busy' (its state is left alone)."""
        if not self.dir.is_dir():
            return Inspection("none")
        try:
            with self.lock("lab.status", log, wait=False):
                insp = self.inspect()
                self.clean(insp, log)
                return insp
        except labstate.LabBusy as e:
            return Inspection("busy", self.state(), str(e))

    # lifecycle
    def up(self, kernel: str, spec: VmSpec, image: str = "debian-12", timeout: float = BOOT_TIMEOUT,
           log: Log = print) -> LabState:
        return self.ensure_up(kernel, spec, image, timeout, log)[0]

    def ensure_up(self, kernel: str, spec: VmSpec, image: str = "debian-12", timeout: float = BOOT_TIMEOUT,
                  log: Log = print, asked_by: str | None = None) -> tuple[LabState, bool]:
        """(state, booted here). A running lab of another size is refused, never resized."""
        fresh = not self.dir.exists()
        with self.lock("lab.up", log):
            insp = self.inspect()
            st = insp.state
            if insp.kind == "up" and st and st.boot_seconds is None:
                log(f"lab {self.name}: a lab.up that did not finish left its VM booting (session {st.sid}); "
                    "stopping it and booting again")
                self._stop(st)
            elif insp.kind == "up" and st:
                if not st.spec.same_size(accel_mod.guest_size(spec, st.accelerator)):
                    how = (f"then `./labctl lab.up --kernel {kernel} --cpus {spec.cpus} --memory {spec.memory}`"
                           if asked_by is None else "then run again (the run boots a guest of its own size)")
                    raise LabError(f"lab {self.name} is up with {st.spec}, but {asked_by or 'lab.up'} asks for "
                                   f"{spec}; a running lab is not resized. Stop it first with "
                                   f"`./labctl lab.down --kernel {self.name}`, {how}")
                want = images.recipe_for(image, spec.packages).hash if spec.packages else None
                if want and want != st.image_recipe_hash:  # packages asked for, a lab up without them
                    raise LabError(f"lab {self.name} is up on image {st.image}, but {asked_by or 'lab.up'} asks for "
                                   f"{image} with packages {', '.join(spec.packages) or '(none added)'} (recipe "
                                   f"{want}); stop it first with `./labctl lab.down --kernel {self.name}`, then run "
                                   "again")
                if spec.mitigations != st.mitigations:
                    have, want = st.mitigations or "on (the kernel's default)", spec.mitigations or "on"
                    raise LabError(f"lab {self.name} is up with mitigations {have}, but {asked_by or 'lab.up'} asks "
                                   f"for mitigations {want}; stop it first with `./labctl lab.down --kernel "
                                   f"{self.name}`, then run again")
                if tcgplugin.wanted(st.accelerator) != bool(st.plugin):
                    raise LabError(f"lab {self.name} is up {'with' if st.plugin else 'without'} the event-count "
                                   f"plugin, but {tcgplugin.ENV} asks otherwise; stop it first with `./labctl "
                                   f"lab.down --kernel {self.name}`, then run again")
                if spec.accel and spec.accel != st.accelerator:
                    raise LabError(f"lab {self.name} is up under {st.accelerator}, but {asked_by or 'lab.up'} asks for "
                                   f"{spec.accel}; a running lab does not change accelerator. Stop it first with "
                                   f"`./labctl lab.down --kernel {self.name}`, then run again")
                log(f"lab {self.name} is already up: kernel {st.release}, port {st.port}, accelerator "
                    f"{st.accelerator}, {st.spec}, booted in {st.boot_seconds:.1f} s")
                return st, False
            else:
                self.clean(insp, log)
            try:
                return self._boot(kernel, spec, image, timeout, log), True
            except BaseException:
                if fresh and not self.serial_log.exists():  # a lab that never launched leaves no directory
                    shutil.rmtree(self.dir, ignore_errors=True)
                    with contextlib.suppress(OSError):
                        self.paths.labs.rmdir()  # nor an empty one for this checkout
                raise

    def _boot(self, kernel: str, spec: VmSpec, image: str, timeout: float, log: Log) -> LabState:
        k = kernels.resolve(kernel, self.paths)
        img = images.image_for(image, k, self.paths, log=log, packages=spec.packages)
        acc = accel_mod.choose(k.vmlinuz, self.paths.cache, force=spec.accel or None)
        log(f"accelerator: {acc.name} ({acc.why})")
        sized = accel_mod.guest_size(spec, acc.name)
        if sized != spec:
            spec = sized
            log(f"lab {self.name}: 1 vCPU under icount ({accel_mod.ICOUNT_ONE_CPU})")
        key = remote.make_keypair(self.dir)
        port = remote.free_port()
        remote.pin_host_key(self.known_hosts, "127.0.0.1", port, img.host_key_pub)
        vm.write_guest_files(self.dir / "guest", key.with_suffix(".pub").read_text())
        scratch = vm.make_scratch_disk(self.dir / "scratch.img")
        plugin = None
        if tcgplugin.wanted(acc.name):  # exact event counts beside the instructions (docs/icount.md)
            plugin = tcgplugin.build(self.paths.cache)
            plugin = dataclasses.replace(plugin, log=str(self.dir / "events.log"))
            Path(plugin.log).unlink(missing_ok=True)  # this boot's windows only
            log(f"lab {self.name}: event-count plugin {Path(plugin.path).name} (API {plugin.api_version}, "
                f"{plugin.qemu_version}), windows in {plugin.log}")
        cmd = vm.vng_command(k, img, acc, vm.VmSpec(spec.cpus, spec.memory, port, f"lab-{self.name}"),
                             self.dir / "guest", disks=(scratch,),
                             append=tuple(mitigations.kernel_args(spec.mitigations)),
                             qemu_opts=(plugin.qemu_opts(Path(plugin.log)),) if plugin else ())
        t0 = time.monotonic()
        sid = vm.launch(cmd, self.serial_log)
        launcher = vm.ProcId.of(sid)
        st = LabState(name=self.name, kernel=k.to_json(), image=img.id, image_recipe_hash=img.recipe.hash,
                      accelerator=acc.name, accelerator_why=acc.why, port=port, sid=sid, qemu_pid=None,
                      cpus=spec.cpus, memory=spec.memory, started=time.time(), boot_id=vm.boot_id(),
                      procs=[launcher.to_json()] if launcher else [],
                      host_key=" ".join(img.host_key_pub.split()[:2]), checkout=str(self.paths.root),
                      mitigations=spec.mitigations, plugin=plugin.manifest() if plugin else None)
        try:
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
                what = f"no SSH within {timeout:.0f} s ({e})" if isinstance(e, TimeoutError) else str(e)
                raise LabError(f"lab {self.name}: boot failed: {what}.\nSerial log {self.serial_log}, last lines:\n"
                               f"{self.serial_tail()}\n(the VM processes were stopped)") from None
            st.boot_seconds = round(time.monotonic() - t0, 2)
            st.qemu_pid = vm.qemu_pid(sid)
            st.procs = [p.to_json() for p in vm.identities(sid)] or st.procs
            self.save(st)
            conn.close()
        except BaseException:  # boot failed or interrupted: stop what was started, leave no state
            self._stop(st, launched_here=True)
            raise
        log(f"lab {self.name}: up in {st.boot_seconds:.1f} s (boot to SSH), accelerator {acc.name}, "
            f"ssh root@127.0.0.1 -p {port}")
        return st

    def _stop(self, st: LabState, launched_here: bool = False) -> None:
        """Stop a state's VM, verified as ours by labstate.verify, and drop its state. A VM launched by
        this process needs no check: its launcher is our unreaped child, so its pid cannot be reused."""
        vm.stop(st.sid, known=None if launched_here else {(p.pid, p.start_time) for p in st.ids()})
        self._drop_state()

    def serial_tail(self, n: int = 25) -> str:
        return file_tail(self.serial_log, n)

    def connection(self):
        """An open SSH connection to the running guest (host key checked now, not at first use)."""
        st = self.running()
        if not st:
            raise LabError(f"lab {self.name} is not up: run `./labctl lab.up --kernel {self.name}`")
        n = self.name
        changed = ""
        try:
            if st.host_key and st.host_key not in self.known_hosts.read_text(errors="replace"):
                changed = (f" {self.known_hosts} no longer holds the key pinned from the image at lab.up: the file "
                           "was changed since.")
        except OSError:
            pass
        fix = (f"{changed} To pin the image's key again: `./labctl lab.down --kernel {n}` then `./labctl lab.up "
               f"--kernel {n}` (or `./labctl lab.forget --kernel {n}` to drop the lab's state, key and pinned key).")
        conn = remote.connect("127.0.0.1", st.port, self.key, self.known_hosts)
        return remote.open_checked(conn, self.known_hosts, fix.strip())

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
            "mitigations_asked": st.mitigations or "on",
            "event_plugin": st.plugin,  # hash, API version, QEMU version, log (None: no plugin)
        }
        return RemoteTarget(conn=self.connection(), kernel_alias=self.name, accelerator=st.accelerator,
                            info=info, paths=self.paths)

    def down(self, log: Log = print) -> bool:
        """Stop the lab's VM if its state verifiably names it; a stale or corrupt state is reported and
        removed, nothing signalled. True if a VM was stopped."""
        if not self.state_file.exists():
            log(f"lab {self.name}: no state, nothing to stop")
            return False
        with self.lock("lab.down", log):
            insp = self.inspect()
            if insp.kind != "up" or not insp.state:
                if insp.kind == "none":
                    log(f"lab {self.name}: no state, nothing to stop")
                self.clean(insp, log)
                return False
            self._stop(insp.state)
            log(f"lab {self.name}: stopped (session {insp.state.sid})")
            return True

    def forget(self, log: Log = print) -> None:
        """Drop a lab that is not running: its state, SSH key, pinned host key, scratch disk, serial log."""
        if not self.dir.exists():
            log(f"lab {self.name}: nothing to forget ({self.dir} does not exist)")
            return
        with self.lock("lab.forget", log):
            insp = self.inspect()
            if insp.kind == "up":
                raise LabError(f"lab {self.name} is up: stop it first with `./labctl lab.down --kernel {self.name}`")
            self.clean(insp, log)
            shutil.rmtree(self.dir)
        log(f"lab {self.name}: forgot its state, SSH key and pinned host key ({self.dir}); the next lab.up "
            "pins the image's host key again")


def all_labs(paths: Paths | None = None) -> list[Lab]:
    paths = paths or Paths()
    if not paths.labs.is_dir():
        return []
    return [Lab(d.name, paths) for d in sorted(paths.labs.iterdir()) if d.is_dir()]


def remote_machine(url: str, paths: Paths) -> RemoteTarget:
    """A real machine over SSH: ssh://[user@]host[:port]. Its host key must already be known
    (LAB_SSH_KNOWN_HOSTS, default ~/.ssh/known_hosts); the key is LAB_SSH_KEY or your usual ones."""
    import urllib.parse

    u = urllib.parse.urlparse(url)
    if not u.hostname:
        raise LabError(f"bad target {url!r}: use ssh://[user@]host[:port]")
    known = Path(os.environ.get("LAB_SSH_KNOWN_HOSTS", Path.home() / ".ssh/known_hosts"))
    key = os.environ.get("LAB_SSH_KEY")
    try:
        conn = remote.connect(u.hostname, u.port or 22, Path(key) if key else None, known, user=u.username or "root")
        remote.open_checked(conn, known, f"If the machine's key changed for a reason you know, put its new key in "
                                         f"{known} (or point LAB_SSH_KNOWN_HOSTS at a file that has it).")
    except LabError as e:
        raise LabError(f"cannot run commands on {url}: {e}") from None
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
    from lab.run.outcome import LabWatch

    lab = Lab(lab_name(kernel, paths), paths)
    _, booted = lab.ensure_up(kernel, spec, asked_by="the playbook's vm:")
    try:
        target = lab.target()
        target.watch = LabWatch(lab)  # did the VM die under a suite? (lab/run/outcome.py)
        yield target
    finally:
        if booted:
            lab.down()
