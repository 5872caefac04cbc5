"""The user's own tools as targets of the tool suite: any command, an executable pushed with the
agent, or a bpftrace program (playbook `suites.tools.user_tools`, `./labctl bench.tools --tool`).

user_tools maps a name to one of:
  "COMMAND ARGS"                     a command already in the target (the image or the host), split
                                     like a shell would (shlex), run without a shell
  {command: "COMMAND ARGS"}          the same
  {push: PATH, args: "ARGS"}         a local file or directory the host copied into the bpf dir
                                     (<bpf dir>/usertools/NAME/); a directory needs `exec`, the
                                     executable's path inside it
  {bpftrace: "PROGRAM"}              `bpftrace -e PROGRAM` with the target's bpftrace
and, in a mapping, `load: [stressors]` (else the suite's `loads`/`load`, else the generic load).

A user tool is attached when it (or a process it started) holds BPF programs (fdinfo prog_id) and that set
has not changed for SETTLE seconds: bpftrace prints "Attaching N probes..." before it attaches,
so a first output line alone does not say it. What refuses it, in words (tools/suite.py makes
the row): the command exits before the load starts (status error, its own last lines), a pushed
executable whose shared libraries the target lacks (unsupported, naming them), bpftrace refused
by the kernel (unsupported, bpftrace's text), no BPF program held within ATTACH_S (unsupported;
programs that appeared system-wide meanwhile are named: a tool that loads through a daemon or
pins its programs and closes them is seen there, not measured). Standard library only.
"""

import os
import re
import shlex
import shutil
import subprocess
import time

from . import cost as toolcost

KEYS = ("command", "push", "args", "exec", "bpftrace", "load")
PUSH_DIR = "usertools"  # <bpf dir>/usertools/NAME/: what the host pushed for tool NAME
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")
SETTLE = 1.0  # seconds the held program set must stay the same to count as attached
ATTACH_S = 60  # seconds a user tool gets to hold its first program (bpftrace compiles under TCG slowly)
LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
# bpftrace's words when the kernel (not the program's syntax) refused it
KERNEL_REFUSED = re.compile(r"attach|kprobe|tracepoint|verif|BTF|kernel|not supported|Operation not permitted|"
                            r"permission|Error loading|Failed to load|probe", re.I)


class Exited(Exception):
    """The command exited before the load started (a row `error`)."""


def check(user_tools, stressors):
    """Problems with the playbook's user_tools (on the host, before anything boots)."""
    if user_tools is None:
        return []
    if not isinstance(user_tools, dict):
        return ["user_tools must map a name to a command, {push: PATH}, or {bpftrace: PROGRAM}"]
    problems = []
    for name, spec in user_tools.items():
        if not isinstance(name, str) or not NAME_RE.match(name) or name == "all":
            problems.append("user_tools: %r is not a tool name (a letter, then letters, digits, _ . -; "
                            "not 'all')" % (name,))
            continue
        if isinstance(spec, str):
            spec = {"command": spec}
        if not isinstance(spec, dict):
            problems.append("user_tools: %s must be a command string or a mapping" % name)
            continue
        unknown = sorted(set(spec) - set(KEYS))
        kinds = [k for k in ("command", "push", "bpftrace") if spec.get(k)]
        if unknown:
            problems.append("user_tools: %s: unknown key(s) %s (known: %s)" % (name, ", ".join(unknown),
                                                                                ", ".join(KEYS)))
        if len(kinds) != 1:
            problems.append("user_tools: %s needs exactly one of command, push, bpftrace" % name)
        for k in ("command", "push", "bpftrace", "args", "exec"):
            if k in spec and not isinstance(spec[k], str):
                problems.append("user_tools: %s: %s must be a string" % (name, k))
        load = spec.get("load")
        if load is not None and (not isinstance(load, list) or not load or any(x not in stressors for x in load)):
            problems.append("user_tools: %s: load must be a non-empty list of %s" % (name, ", ".join(stressors)))
        try:
            shlex.split(spec.get("command") or spec.get("args") or "")
        except ValueError as e:
            problems.append("user_tools: %s: %s" % (name, e))
    return problems


def normalize(spec):
    return {"command": spec} if isinstance(spec, str) else dict(spec)


def kind(spec):
    spec = normalize(spec)
    return "bpftrace" if spec.get("bpftrace") else "push" if spec.get("push") else "command"


def label(spec):
    """What the row's tool_build says ran."""
    spec = normalize(spec)
    if spec.get("bpftrace"):
        return "bpftrace -e %r" % spec["bpftrace"]
    if spec.get("push"):
        return " ".join(x for x in ("pushed", spec["push"], spec.get("exec"), spec.get("args")) if x)
    return "command: %s" % spec["command"]


def missing_libs(path):
    """Shared objects `path` needs that the target's loader cannot find ([] if all resolve, or if
    it is not a dynamic ELF). A script: its interpreter, if the target lacks it."""
    with open(path, "rb") as f:
        head = f.read(256)
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
        if not words:
            return ["an interpreter (empty #! line)"]
        interp = words[1] if os.path.basename(words[0]) == "env" and len(words) > 1 else words[0]
        found = shutil.which(interp) if "/" not in interp else (interp if os.path.exists(interp) else None)
        return [] if found else ["its interpreter %s" % interp]
    if not head.startswith(b"\x7fELF"):
        return []
    loader = next((x for x in LOADERS if os.path.exists(x)), None)
    if loader is None:
        return ["the loader ld-linux-x86-64.so.2"]
    proc = subprocess.run([loader, "--list", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=30)
    gone = [ln.split("=>")[0].strip() for ln in proc.stdout.splitlines() if "not found" in ln]
    gone += re.findall(r"error while loading shared libraries: ([^:\s]+)", proc.stdout)  # the loader stops at the first
    if proc.returncode != 0 and not gone and "statically linked" not in proc.stdout:
        gone = ["(ld.so --list: %s)" % proc.stdout.strip()[-200:]]
    return gone


def argv(name, spec, bpf_dir, refused):
    """The command line of user tool `name`, checked: refused(reason) when the target cannot run it."""
    spec = normalize(spec)
    if spec.get("bpftrace"):
        exe = shutil.which("bpftrace")
        if not exe:
            raise refused("bpftrace is not installed in the target (a lab image gets it from the playbook's "
                          "image: {packages: [bpftrace]}; on a host: apt-get install bpftrace)")
        return [exe, "-e", spec["bpftrace"]]
    if spec.get("push"):
        root = os.path.join(bpf_dir or "", PUSH_DIR, name)
        rel = spec.get("exec") or os.path.basename(spec["push"].rstrip("/"))
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            raise refused("the pushed %s is not in %s (the host copies it there before the run)" % (rel, root))
        gone = missing_libs(path)
        if gone:
            raise refused("%s cannot run in the target: missing %s (ld.so --list in the target)"
                          % (rel, ", ".join(gone)))
        return [path] + shlex.split(spec.get("args") or "")
    words = shlex.split(spec["command"])
    if "/" not in words[0] and not shutil.which(words[0]):
        raise Exited("%s: command not found in the target" % words[0])
    return words


def family(pid):
    """`pid` and every process it started, and they started (by parent pid). The tool stays in the
    agent's process group, so an agent killed outright takes it along (common.cleanup_after)."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])  # field 4 of proc(5): ppid
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p and c not in out]
    return out


def held(pid):
    ids = set()
    for p in family(pid):
        ids |= toolcost.held_prog_ids(p)
    return ids


def settle(proc, before, tail, refused, attach_s=None):
    """Wait until the tool's process group holds BPF programs and the set stays SETTLE s the same.
    refused(reason) if it holds none within attach_s; Exited (its last lines) if it exits first."""
    attach_s = attach_s or ATTACH_S
    t0 = time.monotonic()
    deadline = t0 + attach_s
    last, since = None, t0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Exited("exited %d after %.1f s, before the load started: %s"
                         % (proc.returncode, time.monotonic() - t0, tail() or "(no output)"))
        now = held(proc.pid)
        if now != last:
            last, since = now, time.monotonic()
        elif now and time.monotonic() - since >= SETTLE:
            return now
        time.sleep(0.1)
    appeared = sorted(set(toolcost.prog_ids()) - set(before))
    names = [p["name"] for p in toolcost.progs(appeared[:20]).values()]
    seen = ("; %d program(s) appeared system-wide meanwhile (%s), none held by it: a tool that loads "
            "through a daemon or pins its programs and closes them is seen there, not measured"
            % (len(appeared), ", ".join(names) or "gone") if appeared else "; no program appeared system-wide")
    raise refused("it loads no BPF program of its own within %d s%s. Its output: %s"
                  % (attach_s, seen, tail() or "(none)"))


def refusal(text):
    """bpftrace's exit text: the kernel's refusal (unsupported) or the program's own error (error)."""
    return bool(KERNEL_REFUSED.search(text or ""))
