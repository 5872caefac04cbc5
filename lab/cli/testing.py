"""The project's own checks: ruff, the CI files (.ci/lint) and pytest (exit 5, 'no tests ran', counts as a failure)."""

import sys

from invoke import Exit, task


@task(help={"k": "only tests matching this pytest -k expression", "fast": "skip tests that boot VMs"})
def test(c, k="", fast=False):
    """Lint, then run the whole test suite (VM boots included) the way CI does."""
    lint(c)
    args = ["-q"]
    if k:
        args += ["-k", k]
    if fast:
        args += ["-m", "not vm"]
    res = c.run(f"{sys.executable} -m pytest " + " ".join(f"'{a}'" for a in args), warn=True, pty=False)
    if res.exited == 5:
        raise Exit("pytest collected no tests: that is a failure, not a pass", code=1)
    if res.exited:
        raise Exit(code=res.exited)


@task
def lint(c):
    """ruff on the host code, the layer rule (lab/layers.py: two towers that meet in run, no import or
    #include circle), registry names compared outside their registry
    (lab/namecheck.py), the guest agent checked for Python 3.8 compatibility, then the CI files
    (.ci/lint): shellcheck over the scripts and every workflow `run:` block, actionlint,
    check-jsonschema and zizmor --offline over the workflows."""
    c.run(f"{sys.executable} -m ruff check .")
    c.run(f"{sys.executable} -m lab.layers")
    c.run(f"{sys.executable} -m lab.namecheck")
    c.run(f"{sys.executable} -m ruff check --target-version py38 --select E,F,W,UP --ignore UP031 lab/agent")
    c.run(f"{sys.executable} .ci/lint")
