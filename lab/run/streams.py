"""The agent's output streams as the runner reads them: rows line by line (LineSplitter) and its
stderr echoed with the last lines kept for the run's outcome (StderrTail)."""

from __future__ import annotations

import codecs
import collections
import io
import sys
from collections.abc import Callable

from lab.run.outcome import TAIL

LineSink = Callable[[str], None]


class LineSplitter(io.TextIOBase):
    """A writable stream that hands complete lines to a callback; `feed` takes raw bytes."""

    def __init__(self, on_line: LineSink):
        self.on_line = on_line
        self.buf = ""
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def write(self, s: str) -> int:
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.on_line(line)
        return len(s)

    def feed(self, data: bytes) -> None:
        self.write(self.decoder.decode(data))

    def flush(self) -> None:
        pass

    def leftover(self) -> str:
        """A last line without its newline (the writer died mid-line): never a row."""
        rest, self.buf = self.buf, ""
        return rest


class StderrTail(LineSplitter):
    """The agent's stderr: echoed as it comes, its last lines kept for the run's outcome."""

    def __init__(self) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL)
        super().__init__(self._line)

    def _line(self, line: str) -> None:
        self.tail.append(line)
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
