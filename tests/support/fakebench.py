"""A bench with a fake target (no VM, no agent, no BPF build): the real lab.run.suites.run, whose
target replays rows of a recorded run (tests/fixtures/runs) with this run's id, one every `delay`
seconds. In this process (run_in_process) or as a script, for two runs at once:

    python tests/support/fakebench.py KERNEL ROWS DELAY     (LAB_RESULTS, LAB_CACHE set)
prints `RUN <run id>` at the end."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.run.outcome import AgentExit  # noqa: E402

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "20261127T055106Z-6.12.117_deb12-amd64-f721"


class FakeTarget:
    accelerator = "host"

    def __init__(self, kernel: str, rows: int, delay: float):
        self.kernel_alias, self.rows, self.delay = kernel, rows, delay

    def describe(self) -> dict:
        return {"target": "local", "kernel_alias": self.kernel_alias, "kernel_release": "6.12.117+deb12-amd64",
                "accelerator": "host", "kernel_source": "a fake target (tests/support/fakebench.py)"}

    def run_agent(self, agent_args: list[str], on_row) -> AgentExit:
        run_id = agent_args[agent_args.index("--run-id") + 1]
        suite = agent_args[agent_args.index("--suite") + 1]
        lines = (RECORDED / f"{suite}.jsonl").read_text().splitlines()
        for line in (lines * (1 + self.rows // max(1, len(lines))))[:self.rows]:
            row = json.loads(line)
            row.update(run_id=run_id, accelerator="host")
            on_row(json.dumps(row, sort_keys=True))
            time.sleep(self.delay)
        return AgentExit(0)


def patched(kernel: str, rows: int, delay: float):
    @contextlib.contextmanager
    def open_target(k, spec, paths):
        yield FakeTarget(kernel, rows, delay)

    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch("lab.run.suites.build_bpf", lambda paths: None))
    stack.enter_context(mock.patch("lab.run.labs.open_target", open_target))
    return stack


def run_in_process(tmp_path: Path, kernel: str, rows: int = 3, delay: float = 0.0):
    """(store, stdout) of a hooks run on the fake target, quick playbook."""
    from lab.run import suites

    out = io.StringIO()
    with patched(kernel, rows, delay), contextlib.redirect_stdout(out):
        store = suites.run(["hooks"], kernel=kernel, playbook="quick")
    return store, out.getvalue()


def main() -> int:
    from lab.run import suites

    kernel, rows, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with patched(kernel, rows, delay):
        store = suites.run(["hooks"], kernel=kernel, playbook="quick")
    print(f"RUN {store.run_id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
