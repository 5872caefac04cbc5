"""What the kernel under test runs against CPU vulnerabilities, read where it runs (standard library,
Python 3.8: the agent reads it in the guest, the host reads its own and the manifest's).

Two facts, both recorded:
  vulnerabilities  every line of /sys/devices/system/cpu/vulnerabilities/* ({name: text}), e.g.
                   spectre_v2 "Mitigation: Retpolines; STIBP: disabled; RSB filling";
  mitigations      "off" where the kernel was booted with mitigations=off, else "default" (the
                   kernel's own choice, which on this workplace's CPUs means retpolines, RSB filling,
                   and so on). A playbook asks for one with `vm: {mitigations: on|off}`.
The kernel bench's published figures (lab/data/reference_hooks.yaml) were taken with mitigations off:
a figure taken with them on runs retpoline thunks on every indirect call that the reference never
ran, so comparisons across settings say so (`differ()`).
"""

import os

VULN_DIR = "/sys/devices/system/cpu/vulnerabilities"
SETTINGS = ("on", "off")  # what a playbook may ask for ("on" = the kernel's default)
OFF_ARG = "mitigations=off"


def check(setting, where="vm.mitigations"):
    """The setting normalised ("" for the kernel's default), or ValueError saying what to write."""
    s = str(setting if setting is not None else "").strip().lower()
    if s in ("", "default", "auto", "on"):
        return ""
    if s == "off":
        return "off"
    if s in ("false", "no", "0"):  # YAML's off is False
        return "off"
    if s in ("true", "yes", "1"):
        return ""
    raise ValueError("%s: %r is not a mitigations setting; use on (the kernel's default) or off "
                     "(boots with %s)" % (where, setting, OFF_ARG))


def kernel_args(setting):
    """Kernel command-line arguments for a checked setting."""
    return [OFF_ARG] if setting == "off" else []


def setting_of(cmdline):
    """"off" if a kernel command line turned mitigations off, else "default"."""
    return "off" if OFF_ARG in (cmdline or "").split() else "default"


def read(vuln_dir=VULN_DIR, cmdline_path="/proc/cmdline"):
    """{"mitigations": "off"|"default", "vulnerabilities": {name: line}} of the running kernel
    (an empty mapping where the directory is missing: kernels before 4.15, or no sysfs)."""
    vulns = {}
    try:
        names = sorted(os.listdir(vuln_dir))
    except OSError:
        names = []
    for n in names:
        try:
            with open(os.path.join(vuln_dir, n)) as f:
                vulns[n] = f.read().strip()
        except OSError:
            continue
    try:
        with open(cmdline_path) as f:
            cmdline = f.read()
    except OSError:
        cmdline = ""
    return {"mitigations": setting_of(cmdline), "vulnerabilities": vulns}


def parse_lines(text):
    """{name: line} from `grep . /sys/devices/system/cpu/vulnerabilities/*` output."""
    out = {}
    for ln in (text or "").splitlines():
        path, sep, value = ln.partition(":")
        if sep and path.startswith(VULN_DIR):
            out[path.rsplit("/", 1)[-1]] = value.strip()
    return out


def differ(a, b):
    """A sentence when two mitigation settings differ (None: the same, or one is unknown)."""
    if not a or not b or a == b:
        return None
    return "mitigations differ: %s against %s (retpolines and RSB filling change indirect calls and returns)" % (a, b)
