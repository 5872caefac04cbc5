"""The lab's command line (top layer; may import every other): the invoke tasks (bench, kernels,
labs, results, testing modules here) as one program. `./labctl` (a checkout on a
Debian 12 host, which it sets up first) and the `ebpf-lab` console script (`pip install .`) both run
it; `inv` in a checkout finds the same tasks through tasks.py.

`--version` prints the lab's version and the commit it runs from (not invoke's version)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from invoke import Collection, Program

from lab.cli import bench, kernels, labs, results, testing

NAME = "ebpf-overhead-lab"
ROOT = Path(__file__).resolve().parents[2]


def namespace() -> Collection:
    ns = Collection()
    ns.add_collection(Collection.from_module(labs, name="lab"))
    ns.add_collection(Collection.from_module(kernels, name="kernels"))
    ns.add_collection(Collection.from_module(bench, name="bench"))
    ns.add_collection(Collection.from_module(results, name="results"))
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


def commit() -> str:
    """The checkout's commit (`git describe --always --dirty`), or why there is none."""
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def version_line() -> str:
    """What --version prints after the name: the lab's version and commit."""
    return f"{lab_version()} (commit {commit()})"


def program(binary: str = "ebpf-lab") -> Program:
    return Program(namespace=namespace(), version=version_line(), name=NAME, binary=binary)


def main(argv: list[str] | None = None, binary: str = "ebpf-lab") -> None:
    try:
        program(binary).run(argv if argv is not None else sys.argv)
    except BrokenPipeError:  # `./labctl results.list --json | head`: the reader left, not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


if __name__ == "__main__":  # ./labctl runs `python -m lab.cli`
    main(binary="./labctl")
