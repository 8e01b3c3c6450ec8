"""A progress bar for long-running operator commands, on stderr (stdout stays clean for
`--json`). On a terminal it redraws one line in place, at most ten times a second; elsewhere
(a log, CI) it writes a plain line at most every five seconds, and always a last one."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24


class ProgressBar:
    def __init__(self, label: str, unit: str = "jobs", stream: TextIO | None = None) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._shown = 0.0
        self._last = ""

    def update(self, done: int, total: int | None = None, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and (done == 0 or now - self._shown < (0.1 if self.tty else 5.0)):
            return
        self._shown = now
        rate = done / max(now - self.started, 1e-6)
        if total:
            share = min(done / total, 1.0)
            filled = int(share * WIDTH)
            text = (f"{self.label} [{'#' * filled}{'-' * (WIDTH - filled)}] {share:4.0%} "
                    f"{done:,}/{total:,} {self.unit} {rate:,.0f}/s")
        else:
            text = f"{self.label} {done:,} {self.unit} {rate:,.0f}/s"
        if self.tty:
            self.stream.write("\r" + text.ljust(len(self._last)))
        else:
            self.stream.write(text + "\n")
        self._last = text
        self.stream.flush()

    def close(self, done: int, total: int | None = None) -> None:
        """Shows the final state and ends the line."""
        self.update(done, total, final=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
