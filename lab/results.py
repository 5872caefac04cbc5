"""The result store: results/<run-id>/manifest.json plus one <suite>.jsonl of rows per suite."""

from __future__ import annotations

import datetime
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def new_run_id(kernel: str) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in kernel)
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


@dataclass
class RunStore:
    """One run's directory. Rows are appended line by line as they arrive (a crash keeps them)."""

    path: Path

    @classmethod
    def create(cls, results_dir: Path, run_id: str, manifest: dict[str, Any]) -> RunStore:
        path = results_dir / run_id
        path.mkdir(parents=True, exist_ok=False)
        store = cls(path)
        store.write_manifest(dict(manifest, run_id=run_id))
        return store

    @property
    def run_id(self) -> str:
        return self.path.name

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.path / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path / "manifest.json")

    def update_manifest(self, **fields: Any) -> None:
        self.write_manifest(dict(self.manifest(), **fields))

    def rows_file(self, suite: str) -> Path:
        return self.path / f"{suite}.jsonl"

    def append_line(self, suite: str, line: str) -> None:
        with self.rows_file(suite).open("a") as f:
            f.write(line.rstrip("\n") + "\n")
