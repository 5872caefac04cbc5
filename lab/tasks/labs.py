"""lab.*: boot, inspect, use and stop lab guests (one per kernel; several may run at once)."""

import sys

from invoke import Exit, task

from lab.config import LabError
from lab.labs import Lab, all_labs, lab_name
from lab.playbooks import VmSpec

KHELP = "kernel alias (./labctl kernels.list), or a path to a vmlinuz / build tree / .deb(s)"


def _lab(kernel):
    return Lab(lab_name(kernel))


@task(help={"kernel": KHELP, "cpus": "guest vCPUs", "memory": "guest memory (QEMU syntax, e.g. 2G)",
            "image": "root image recipe (images/*.yaml.j2)", "timeout": "seconds to wait for SSH"})
def up(c, kernel="6.12", cpus=2, memory="2G", image="debian-12", timeout=240):
    """Boot a guest on KERNEL and wait until SSH answers; prints boot-to-SSH time and accelerator."""
    try:
        st = _lab(kernel).up(kernel, VmSpec(cpus=int(cpus), memory=memory), image=image, timeout=float(timeout))
    except LabError as e:
        raise Exit(f"error: {e}", code=1) from None
    print(f"boot-to-SSH {st.boot_seconds:.1f} s  accelerator {st.accelerator}  kernel {st.release}")


@task
def status(c):
    """Every lab: kernel, accelerator, port, pids, boot time, and whether it is running."""
    labs = all_labs()
    if not labs:
        print("no labs (start one with ./labctl lab.up --kernel 6.12)")
    for lab in labs:
        st = lab.state()
        if not st:
            continue
        up_ = lab.running() is not None
        print(f"{lab.name:10s} {'up' if up_ else 'DOWN':5s} kernel {st.release}  {st.accelerator}  "
              f"port 127.0.0.1:{st.port}  session {st.sid} qemu {st.qemu_pid}  boot {st.boot_seconds} s  "
              f"dir {lab.dir}")


@task(help={"kernel": "which lab (its kernel)", "cmd": "command to run (or give it after --)"})
def ssh(c, kernel="6.12", cmd=""):
    """Run a command in a lab guest: ./labctl lab.ssh -- uname -r"""
    if not cmd and "--" in sys.argv:
        cmd = " ".join(sys.argv[sys.argv.index("--") + 1:])
    if not cmd:
        raise Exit("give a command: ./labctl lab.ssh --kernel 6.12 -- uname -r", code=2)
    try:
        conn = _lab(kernel).connection()
    except LabError as e:
        raise Exit(f"error: {e}", code=1) from None
    res = conn.run(cmd, warn=True, pty=False)
    raise Exit(code=res.exited)


@task(help={"kernel": "which lab (its kernel); --all for every lab", "all_": "stop every lab"})
def down(c, kernel="6.12", all_=False):
    """Stop a lab's guest (only its own processes, by pid)."""
    for lab in all_labs() if all_ else [_lab(kernel)]:
        lab.down()
