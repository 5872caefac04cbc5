"""The lab's command line (top layer; may import every other): the invoke tasks (bench, kernels,
labs, results, testing modules here) as one program. `./labctl` (a checkout on a
Debian 12 host, which it sets up first) and the `ebpf-lab` console script (`pip install .`) both run
it; `inv` in a checkout finds the same tasks through tasks.py.

`--version` prints the lab's version and the commit it runs from (not invoke's version)."""

from __future__ import annotations

import subprocess
import sys

from invoke import Collection, Exit, Program

from lab.cli import bench, history, kernels, labs, results, testing
from lab.core.config import IMPORT_ROOT, source_commit

NAME = "ebpf-overhead-lab"
ROOT = IMPORT_ROOT  # a checkout's pyproject.toml is here; an installed wheel has none beside it


def namespace() -> Collection:
    ns = Collection()
    ns.add_collection(Collection.from_module(labs, name="lab"))
    ns.add_collection(Collection.from_module(kernels, name="kernels"))
    ns.add_collection(Collection.from_module(bench, name="bench"))
    ns.add_collection(Collection.from_module(results, name="results"))
    ns.collections["results"].add_task(history.history)  # results.history (lab/cli/history.py)
    ns.collections["bench"].add_task(history.bisect)  # bench.bisect
    ns.add_task(testing.test)
    ns.add_task(testing.lint)
    return ns


def lab_version() -> str:
    """The version in the checkout's pyproject.toml (the source that runs), else the installed one."""
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (ValueError, KeyError):
            pass
    from importlib import metadata

    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError:
        return "unknown"


def version_line() -> str:
    """What --version prints after the name: the lab's version and commit."""
    return f"{lab_version()} (commit {source_commit()})"


KINDS = {int: "a whole number", float: "a number", str: "a value", bool: "no value (a flag)", list: "a value"}


def _bad_value(e: ValueError) -> str:
    """The option whose value invoke could not convert, and what it takes, in one line (invoke's
    own message names neither): the Argument is found in the traceback of its set_value."""
    from invoke.parser import Argument

    arg = None
    tb = e.__traceback__
    while tb is not None:
        me = tb.tb_frame.f_locals.get("self")
        if isinstance(me, Argument):
            arg = me
        tb = tb.tb_next
    if arg is None:
        return f"error: a bad option value ({e}); ./labctl --help TASK lists a task's options"
    flag = "--" + str(arg.name).replace("_", "-").strip("-")
    got = str(e).rpartition(": ")[2]
    return f"error: {flag} takes {KINDS.get(arg.kind, 'a value')}, not {got} (./labctl --help TASK for its options)"


class LabProgram(Program):
    """invoke's Program with the lab's refusals: an option or task it cannot parse, or an option
    value of the wrong kind, is one `error:` line and exit 2 (bad input), never a traceback."""

    def _parsing(self, step, *args):
        from invoke.exceptions import ParseError

        try:
            return step(*args)
        except ParseError as e:
            raise Exit(f"error: {e} (./labctl --list shows the tasks, ./labctl --help TASK a task's options)",
                       code=2) from None
        except ValueError as e:
            raise Exit(_bad_value(e), code=2) from None

    def parse_core(self, argv):
        return self._parsing(super().parse_core, argv)

    def parse_tasks(self):
        return self._parsing(super().parse_tasks)

    def parse_cleanup(self):
        return self._parsing(super().parse_cleanup)


def program(binary: str = "ebpf-lab") -> Program:
    return LabProgram(namespace=namespace(), version=version_line(), name=NAME, binary=binary)


def missing_debian_packages() -> list[str] | None:
    """The Debian packages the lab needs on its host (lab/data/debian-packages.txt, the list ./labctl
    installs) that dpkg does not have installed; None where there is no dpkg-query to ask."""
    from importlib import resources

    text = (resources.files("lab") / "data" / "debian-packages.txt").read_text()
    wanted = [w[0] for w in map(str.split, text.splitlines()) if w and not w[0].startswith("#") and w[0] != "dev"]
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *wanted], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    have = {ln.split()[0] for ln in out.splitlines() if ln.endswith("install ok installed")}
    return [p for p in wanted if p not in have]


def warn_missing(argv: list[str]) -> None:
    """ebpf-lab (not ./labctl, which installs them) names the missing Debian packages in one message
    before a task runs; --list, --help and --version need none."""
    if not [a for a in argv[1:] if not a.startswith("-")]:
        return
    missing = missing_debian_packages()
    if missing is None:
        print("ebpf-lab: cannot check the Debian packages the lab needs (no dpkg-query): it runs on Debian 12 "
              "(see lab/data/debian-packages.txt)", file=sys.stderr)
    elif missing:
        print(f"ebpf-lab: missing Debian packages the lab needs on this host: {' '.join(missing)} (install them: "
              f"sudo apt-get install {' '.join(missing)}; or run ./labctl in a checkout as root, which does)",
              file=sys.stderr)


def main(argv: list[str] | None = None, binary: str = "ebpf-lab") -> None:
    argv = argv if argv is not None else sys.argv
    if binary != "./labctl":
        warn_missing(argv)
    try:
        program(binary).run(argv)
    except BrokenPipeError:  # `./labctl results.list --json | head`: the reader left, not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
