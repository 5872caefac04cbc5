"""The tool suite's tool processes: started (attached once they print, or for a user's tool once they
hold BPF programs), stopped by pid with SIGINT (their summary), and their CPU read. Standard library only."""

import collections
import os
import shutil
import signal
import subprocess
import threading
import time

from ..common import stopping
from . import cost as toolcost
from . import user as usertool


class Refused(Exception):
    """The tool could not load or attach on this kernel."""


def tracefs_missing():
    return not (os.path.isdir("/sys/kernel/tracing/events") or os.path.isdir("/sys/kernel/debug/tracing/events"))


def start(workdir, name, argv, env=None, user=False):
    """Start a tool and wait until it is attached: it prints its banner or header line then
    (line-buffered through stdbuf). A tool that exits at once was refused: Refused(its stderr).
    Its output is drained in a thread so a chatty tool never blocks on a full pipe. Where tracefs
    is not mounted (libbpf finds tracepoint ids there), the tool runs in a mount namespace of its
    own with tracefs mounted (unshare execs it: the pid is the tool's). A user tool (user=True)
    is attached once it or a child holds BPF programs (tools/user.py settle; its children are
    stopped with it); one that exits first raises usertool.Exited."""
    log = open(os.path.join(workdir, name + ".err"), "w+")
    stdbuf = shutil.which("stdbuf")
    cmd = ([stdbuf, "-oL"] if stdbuf else []) + list(argv)
    unshare = shutil.which("unshare")
    if unshare and tracefs_missing():
        cmd = [unshare, "-m", "--propagation", "private", "sh", "-c",
               'mount -t tracefs tracefs /sys/kernel/tracing; exec "$@"', "sh"] + cmd
    t0 = time.monotonic()
    before = toolcost.prog_ids() if user else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, universal_newlines=True, env=env)
    proc.lab_log, proc.lab_user = log, user
    first = threading.Event()
    eof = threading.Event()
    lines = collections.deque(maxlen=5)

    def drain():
        for line in proc.stdout:
            lines.append(line.strip())
            first.set()
        eof.set()
        first.set()

    def tail():
        log.seek(0)
        err = [ln.strip() for ln in log.read().splitlines() if ln.strip()]
        return " | ".join([x for x in lines if x][-5:] + err[-8:])[-1500:]

    threading.Thread(target=drain, daemon=True).start()
    if user:
        try:
            usertool.settle(proc, before, tail, Refused)
        except Exception:
            stop(proc)
            raise
        proc.lab_load_ms = (time.monotonic() - t0) * 1000.0
        return proc
    deadline = time.monotonic() + 30  # loading BTF and programs is slow under emulation
    while time.monotonic() < deadline and not first.wait(0.2):
        pass
    if eof.is_set():  # its output closed: it is exiting (a refused load), let it finish
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is not None:
        text = tail()
        log.close()
        raise Refused(text or "%s exited %d" % (name, proc.returncode))
    proc.lab_load_ms = (time.monotonic() - t0) * 1000.0  # exec to attached (its first output line)
    return proc


def stop(proc):
    """Stop a tool by pid with SIGINT (its summary, then it detaches), SIGKILL after 30 s; a user
    tool's children too, by pid."""
    kids = usertool.family(proc.pid)[1:] if getattr(proc, "lab_user", False) else []  # a user tool's children
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the tools print their summary and detach on Ctrl-C
        try:  # wait, not communicate: the drain thread reads its output, which a process it left
            # running (a daemon it started) may hold open for good
            proc.wait(timeout=2 if stopping() else 30)  # the run is being stopped: no summary wait
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in kids:  # anything it started and left behind, by pid
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if not proc.lab_log.closed:
        proc.lab_log.close()


def tool_cpu(proc):
    """(CPU s, context switches) of a tool's process; a user tool's summed with its children's."""
    if not getattr(proc, "lab_user", False):
        return toolcost.proc_cpu(proc.pid)
    got = [0.0, 0]
    for pid in usertool.family(proc.pid):
        try:
            cpu, sw = toolcost.proc_cpu(pid)
        except OSError:  # gone meanwhile
            continue
        got[0] += cpu
        got[1] += sw
    return tuple(got)

