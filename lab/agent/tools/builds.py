"""Which build of a tool runs: the machine's own libbpf-tools, or a newer one pushed with the agent.

The guest image's libbpf-tools is Debian 12's; tools built before a kernel can be refused by it
(cachestat attaches account_page_dirtied, gone from 6.12). The host extracts newer builds from
Debian 13 (trixie) and unstable with their own glibc and loader (lab/guest/toolbuilds.py) into
<bpf dir>/toolbuilds/<suite>/. Playbook parameter `tool_build`:
  auto      (default) per tool: the packaged build; if the kernel refuses it, each newer build in
            turn (trixie, then unstable); the first that attaches is measured
  packaged  only the machine's own build (`bookworm` says the same for the Debian 12 image)
  trixie, unstable   only that newer build
Every tools row says which build ran (`tool_build`, e.g. "libbpf-tools 0.31.0+ds-7 (trixie)") and
what refused the builds tried before it (`tool_build_refused`). Standard library only.
"""

import json
import os
import subprocess

CHOICES = ("auto", "packaged", "bookworm", "trixie", "unstable")
NEWER = ("trixie", "unstable")  # oldest first: the first newer build that attaches is used
LOADER = "ld-linux-x86-64.so.2"
PACKAGE_DIR = "/usr/sbin"  # where Debian's libbpf-tools installs them


def check(value):
    """A problem with the playbook's tool_build value, or None."""
    if value is None or value in CHOICES:
        return None
    return "tool_build must be one of %s, not %r" % (", ".join(CHOICES), value)


def os_codename():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"') or None
    except OSError:
        pass
    return None


def dpkg_version(package):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


class Packaged:
    """The tools installed on the machine (Debian's libbpf-tools in the lab's image)."""

    name = "packaged"

    def __init__(self, tool_dir):
        self.tool_dir = tool_dir
        version = dpkg_version("libbpf-tools") if os.path.normpath(tool_dir) == PACKAGE_DIR else None
        self.label = ("libbpf-tools %s (%s)" % (version, os_codename() or "installed") if version
                      else "the tools in %s" % tool_dir)

    def argv(self, tool):
        path = os.path.join(self.tool_dir, tool)
        return [path] if os.path.exists(path) else None

    def missing(self, tool):
        return "%s not found (Debian package libbpf-tools installs it there)" % os.path.join(self.tool_dir, tool)


class Bundled:
    """A newer build extracted by the host with its own libraries (build.json says what it is)."""

    def __init__(self, root, meta):
        self.root = root
        self.name = meta.get("suite", os.path.basename(root))
        self.label = "%s %s (%s)" % (meta.get("package", "libbpf-tools"), meta.get("version", "?"), self.name)
        self.tools = meta.get("tools", {})

    def argv(self, tool):
        binary = os.path.join(self.root, "bin", tool)
        lib = os.path.join(self.root, "lib")
        if tool not in self.tools or not os.path.exists(binary):
            return None
        return [os.path.join(lib, LOADER), "--inhibit-cache", "--library-path", lib, "--argv0", tool, binary]

    def missing(self, tool):
        return "%s is not in this build" % tool


def bundled(bpf_dir):
    """suite -> Bundled, for every newer build pushed with the agent."""
    out = {}
    for suite in NEWER:
        root = os.path.join(bpf_dir or "", "toolbuilds", suite)
        try:
            with open(os.path.join(root, "build.json")) as f:
                out[suite] = Bundled(root, json.load(f))
        except (OSError, ValueError):
            continue
    return out


def candidates(choice, tool_dir, bpf_dir):
    """The builds to try, in order, for playbook value `choice`."""
    if choice in ("packaged", "bookworm"):
        return [Packaged(tool_dir)]
    newer = bundled(bpf_dir)
    if choice == "auto":
        return [Packaged(tool_dir)] + [newer[s] for s in NEWER if s in newer]
    if choice in newer:
        return [newer[choice]]
    return []


class Chooser:
    """Starts each tool with the first build the kernel accepts and remembers it, so every later
    start of that tool (the timed trials) runs the same build."""

    def __init__(self, choice, tool_dir, bpf_dir):
        self.choice = choice or "auto"
        self.builds = candidates(self.choice, tool_dir, bpf_dir)
        self.chosen = {}  # tool -> build
        self.refused = {}  # tool -> [(build label, why)]

    def start(self, tool, start, refused):
        """start(argv) returns the running tool or raises `refused` (the kernel refused it)."""
        if tool in self.chosen:
            return start(self.chosen[tool].argv(tool))
        tried = self.refused[tool] = []
        if not self.builds:
            raise refused("tool_build %s: no such build was pushed with the agent (the host could not "
                          "extract it: see the run's log)" % self.choice)
        for build in self.builds:
            argv = build.argv(tool)
            if argv is None:
                tried.append((build.label, build.missing(tool)))
                continue
            try:
                proc = start(argv)
            except refused as e:
                tried.append((build.label, str(e)))
                continue
            self.chosen[tool] = build
            return proc
        if len(tried) == 1:
            raise refused(tried[0][1])
        raise refused(" || ".join("%s: %s" % t for t in tried))

    def fields(self, tool):
        """Row fields: the build that ran (None if none did) and what refused the others."""
        build = self.chosen.get(tool)
        return {"tool_build": build.label if build else None,
                "tool_build_refused": [{"build": b, "reason": why} for b, why in self.refused.get(tool, [])]}
