"""lab.*: boot, inspect, use and stop lab guests (one per kernel; several may run at once).

Labs are this checkout's own (state under <cache>/labs/<hash of this checkout>/): lab.status and
lab.down --all never see or touch labs another checkout started."""

import os
import signal
import sys

from invoke import Exit, task

from lab.core.config import LabError
from lab.run.labs import Lab, all_labs, lab_name
from lab.run.playbooks import vm_spec

KHELP = "kernel alias (./labctl kernels.list), or a path to a vmlinuz / build tree / .deb(s)"


def _lab(kernel):
    return Lab(lab_name(kernel))


@task(help={"kernel": KHELP, "cpus": "guest vCPUs", "memory": "guest memory (QEMU syntax, e.g. 2G or 512M)",
            "image": "root image recipe (images/*.yaml.j2)", "timeout": "seconds to wait for SSH",
            "accel": "kvm, icount or tcg (default: KVM where it works, else icount; LAB_ACCEL sets it too)"})
def up(c, kernel="6.12", cpus="2", memory="2G", image="debian-12", timeout=240, accel=""):
    """Boot a guest on KERNEL and wait until SSH answers; prints boot-to-SSH time and accelerator.
    If the lab is already up it is used as it is; of another size, it is refused (lab.down first)."""
    try:
        spec = vm_spec(cpus, memory, accel)
    except ValueError as e:
        raise Exit(f"error: {e}", code=2) from None
    def on_term(signum, frame):  # like Ctrl-C: the boot stops the VM it launched, leaves no state
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        st = _lab(kernel).up(kernel, spec, image=image, timeout=float(timeout))
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
    finally:
        signal.signal(signal.SIGTERM, old)
    boot = f"{st.boot_seconds:.1f} s" if st.boot_seconds is not None else "unknown"
    print(f"boot-to-SSH {boot}  accelerator {st.accelerator}  kernel {st.release}")


@task(help={"json_": "one JSON document (a list of labs: up or busy) instead of text"})
def status(c, json_=False):
    """Every lab of this checkout: kernel, accelerator, port, pids, boot time, and whether it is
    running (checked by process identity; a stale or corrupt state is reported and removed)."""
    labs = all_labs()
    if json_:
        import json

        doc = []
        for lab in labs:
            insp = lab.checked()
            st = insp.state
            if insp.kind == "busy":
                doc.append({"name": lab.name, "state": "busy", "why": insp.why})
            elif insp.kind == "up" and st:
                doc.append({"name": lab.name, "state": "up", "kernel": st.release, "accelerator": st.accelerator,
                            "cpus": st.cpus, "memory": st.memory, "port": st.port, "session": st.sid,
                            "qemu_pid": st.qemu_pid, "boot_seconds": st.boot_seconds, "dir": str(lab.dir)})
        print(json.dumps(doc, indent=2))
        return
    shown = 0
    for lab in labs:
        insp = lab.checked()
        st = insp.state
        if insp.kind == "busy":
            print(f"{lab.name:10s} BUSY  {insp.why}")
            shown += 1
        elif insp.kind == "up" and st:
            print(f"{lab.name:10s} up    kernel {st.release}  {st.accelerator}  {st.spec}  port 127.0.0.1:{st.port}  "
                  f"session {st.sid} qemu {st.qemu_pid}  boot {st.boot_seconds} s  dir {lab.dir}")
            shown += 1
    if not shown:
        print("no labs up (start one with ./labctl lab.up --kernel 6.12)")


@task(help={"kernel": "which lab (its kernel)", "cmd": "command to run (or give it after --); none: a shell"})
def ssh(c, kernel="6.12", cmd=""):
    """A shell in a lab guest, or a command: ./labctl lab.ssh -- uname -r (stdin, a terminal and the
    exit code pass through: it is the system's ssh, with the lab's key and its pinned host key)."""
    if not cmd and "--" in sys.argv:
        cmd = " ".join(sys.argv[sys.argv.index("--") + 1:])
    lab = _lab(kernel)
    try:
        lab.connection().close()  # the lab is up and its host key is the pinned one, or why not in words
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
    st = lab.running()
    if st is None:
        raise Exit(f"error: lab {lab.name} stopped", code=1)
    args = ["ssh", "-q", "-p", str(st.port), "-i", str(lab.key), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={lab.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]
    if not cmd and sys.stdin.isatty():
        args.append("-t")
    sys.stdout.flush()
    os.execvp("ssh", [*args, "root@127.0.0.1", *([cmd] if cmd else [])])


@task(help={"kernel": "which lab (its kernel); --all for every lab of this checkout", "all_": "stop every lab"})
def down(c, kernel="6.12", all_=False):
    """Stop a lab's guest (only processes whose identity matches its state; a stale or corrupt state
    is reported and removed, nothing signalled). --all goes on past a lab it cannot handle."""
    failed = []
    for lab in all_labs() if all_ else [_lab(kernel)]:
        try:
            lab.down()
        except (LabError, OSError) as e:
            print(f"lab {lab.name}: error: {e}", file=sys.stderr)
            failed.append(lab.name)
    if failed:
        raise Exit(f"error: could not stop lab(s) {', '.join(failed)} (see above)", code=1)


@task(help={"kernel": "which lab (its kernel)"})
def forget(c, kernel="6.12"):
    """Drop a stopped lab's state, SSH key and pinned host key (the next lab.up pins the image's key
    again): for a lab whose known_hosts or key was damaged or whose image was rebuilt."""
    try:
        _lab(kernel).forget()
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
