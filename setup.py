"""The wheel's extra build step (pyproject.toml holds the rest): the folders the lab reads besides its
Python package (bpf/, images/, playbooks/) travel as package data in lab/tree/, and
lab/_build_info.json records the commit the wheel was built from (`ebpf-lab --version` prints it)."""

import json
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
TREE = ("bpf", "images", "playbooks")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.o", "build")


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        return out or "unknown (built outside a git checkout)"
    except (OSError, subprocess.SubprocessError):
        return "unknown (built outside a git checkout)"


class BuildWithTree(build_py):
    def run(self) -> None:
        super().run()
        lab = Path(self.build_lib) / "lab"
        for name in TREE:
            if (HERE / name).is_dir():
                shutil.rmtree(lab / "tree" / name, ignore_errors=True)
                shutil.copytree(HERE / name, lab / "tree" / name, ignore=SKIP)
        (lab / "_build_info.json").write_text(json.dumps({"commit": commit()}) + "\n")


setup(cmdclass={"build_py": BuildWithTree})
