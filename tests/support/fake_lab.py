"""A stand-in for `./labctl bench.all` in tests/unit/test_ci_step.py (the real one needs a VM): it makes a
run in $LAB_RESULTS with the lab's own RunStore and signal handling (lab/core/interrupt.py), appends a row
every 0.05 s, and on SIGTERM marks the run `interrupted` and exits 143, as bench.all does.
`--ignore-term`: a lab that does not stop on SIGTERM (only SIGKILL ends it; its run stays `running`)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.core import interrupt  # noqa: E402
from lab.results.store import RunStore  # noqa: E402


def main() -> int:
    store = RunStore.create(Path(os.environ["LAB_RESULTS"]), f"20261207T000000Z-fake-{os.getpid()}",
                            {"status": "running", "status_reason": "", "accelerator": "host", "suites": {}})
    Path(os.environ["FAKE_LAB_PIDFILE"]).write_text(str(os.getpid()))
    if "--ignore-term" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            store.append_line("hooks", json.dumps({"n": 0}))
            time.sleep(0.05)
    n = 0
    with interrupt.handling():
        try:
            while True:
                with interrupt.deferred():
                    store.append_line("hooks", json.dumps({"n": n}))
                    n += 1
                time.sleep(0.05)
        except interrupt.Interrupted as e:
            with interrupt.deferred():
                store.update_manifest(status="interrupted", status_reason=f"{e.name} after {n} rows", rows=n)
            return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
