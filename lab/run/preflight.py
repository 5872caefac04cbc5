"""What a bench checks before it builds or boots anything (bad input: InputError, exit 2): the
kernel names something the lab can run, an ssh:// target's host key is pinned, and the run's
estimated length (lab/run/sizes.py) is within its bound."""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

from lab.core.config import InputError, Paths
from lab.run import playbooks, sizes


def check_kernel(kernel: str, paths: Paths) -> None:
    """An unknown kernel is refused here (a catalog alias, a source's prefix or a path is not fetched)."""
    from lab.kernels import catalog, sources

    if kernel == "host" or kernel.startswith("ssh://"):
        return
    _, entries = catalog.catalog()
    if kernel in entries or any(s.prefix and kernel.startswith(s.prefix) for s in sources.SOURCES.values()):
        return
    from lab.run.labs import Lab, lab_name

    if "/" not in kernel and not kernel.endswith(".deb") and Lab(lab_name(kernel, paths), paths).running():
        return  # a lab that is up under that name (lab.up --kernel NAME): the run uses it
    catalog.resolve(kernel, paths)  # a path (resolved into the cache) or an unknown name (InputError)


def check_pushed(params: dict) -> None:
    """Every pushed user tool's path exists (the same check lab/guest/usertools.prepare makes, before the build)."""
    from lab.agent.tools import user as usertool
    from lab.guest import usertools

    for name, spec in (params.get("user_tools") or {}).items():
        spec = usertool.normalize(spec)
        if spec.get("push"):
            src = usertools.source(spec["push"])
            if not src.exists():
                raise InputError(f"user tool {name}: push path {src} does not exist")
            if src.is_dir() and not spec.get("exec"):
                raise InputError(f"user tool {name}: {src} is a directory: say which executable in it runs "
                                 "({push: DIR, exec: bin/tool})")


def known_hosts_file() -> Path:
    return Path(os.environ.get("LAB_SSH_KNOWN_HOSTS", Path.home() / ".ssh/known_hosts"))


def check_ssh(url: str) -> None:
    """An ssh:// target needs its host key pinned in the known_hosts file before the lab connects."""
    import paramiko

    u = urllib.parse.urlparse(url)
    try:
        port = u.port or 22
    except ValueError:
        raise InputError(f"bad target {url!r}: the port must be a number, e.g. ssh://root@box:22") from None
    if not u.hostname:
        raise InputError(f"bad target {url!r}: use ssh://[user@]host[:port]")
    known = known_hosts_file()
    entry = u.hostname if port == 22 else f"[{u.hostname}]:{port}"
    pin = (f"pin its key first: `ssh-keyscan -p {port} {u.hostname} >> {known}` (then compare "
           f"`ssh-keygen -lf {known}` with the machine's own fingerprint), or connect once with "
           f"`ssh -p {port} {u.username or 'root'}@{u.hostname}`; LAB_SSH_KNOWN_HOSTS names another file")
    if not known.is_file():
        raise InputError(f"{url}: no known_hosts file {known} to check the machine's host key against: {pin}")
    try:
        keys = paramiko.HostKeys(str(known))
    except (OSError, UnicodeDecodeError, paramiko.hostkeys.InvalidHostKey) as e:
        raise InputError(f"{url}: cannot read the known_hosts file {known} ({type(e).__name__}: {e}): fix or "
                         f"remove it, then {pin}") from None
    if not keys.lookup(entry):
        raise InputError(f"{url}: {known} holds no host key for {entry}: {pin}")


def assumed_accelerator(kernel: str, pb: playbooks.Playbook, paths: Paths) -> tuple[str, str]:
    """(accelerator, why) for the estimate, before anything boots: host for host and ssh:// targets;
    for a guest the one asked for (--accel, vm.accel, LAB_ACCEL), else this host boot's probe verdict
    (<cache>/accel.json), else icount (the slowest a guest is given when KVM is not known to work)."""
    from lab.guest import accel

    if kernel == "host" or kernel.startswith("ssh://"):
        return "host", ""
    asked = pb.vm.accel or accel.asked(os.environ.get("LAB_ACCEL", ""), "LAB_ACCEL")
    if asked:
        return asked, ""
    try:
        v = json.loads((paths.cache / "accel.json").read_text())
        if v.get("boot_id") == accel._boot_id() and v.get("name") in ("kvm", "icount"):
            return str(v["name"]), "as probed this host boot"
    except (OSError, ValueError, AttributeError):
        pass
    return "icount", "assumed: KVM not probed yet on this host boot"


def check(kernel: str, pb: playbooks.Playbook, chosen: list[str], paths: Paths,
          max_hours: str | float | None = None) -> sizes.Estimate:
    """Everything a run is refused for before it starts; returns its estimate (printed and recorded)."""
    hours = sizes.max_hours(max_hours)
    check_kernel(kernel, paths)
    if kernel.startswith("ssh://"):
        check_ssh(kernel)
    if "tools" in chosen:
        check_pushed(pb.suites.get("tools") or {})
    acc, why = assumed_accelerator(kernel, pb, paths)
    est = sizes.estimate({s: pb.params(s, acc) for s in chosen}, acc, why)
    sizes.refuse_long(est, hours)
    return est
