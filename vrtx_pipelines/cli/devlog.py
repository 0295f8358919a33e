"""``vrtx dev``'s terminal: the full output of the API and of Dagster goes to files, the terminal shows what a
person wants to see. By default that is the activity feed (``vrtx_pipelines.cli.activity``: syncs, pushes,
webhooks) plus every problem a child process reports; ``--verbose`` shows the children's whole output as well.

A child's output is a stream of log records in a few formats (ours, Dagster's, uvicorn's, Python's tracebacks and
warnings), each record one line plus continuation lines (a stack trace). ``QuietFilter`` decides per record and
keeps or drops its continuation lines with it.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import IO

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# "2026-12-03 05:35:04,082 level=WARNING logger=vrtx.api ..." (vrtx_pipelines.cli.main.setup_logging)
OURS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ level=(\w+) logger=(\S+)")
# "2026-12-03 05:36:16 +0000 - dagster.daemon.SensorDaemon - INFO - ..." (Dagster's colored/plain console format)
DAGSTER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - ([\w.\-]+) - (\w+) - (.*)$")
# A run's own event lines name its job and run id: "xero_sync - 3901fb4c-5341-... - 26116 - RUN_START - ..."
RUN_EVENT = re.compile(r"^[\w.\-]+ - [0-9a-f]{8}-[0-9a-f]{4}-")
UVICORN = re.compile(r"^(INFO|WARNING|ERROR|CRITICAL):\s{2,}")
TRACEBACK = "Traceback (most recent call last):"
PYTHON_WARNING = re.compile(r"^\S+\.py:\d+: \w*Warning: ")
SEVERE = frozenset({"ERROR", "CRITICAL", "FATAL"})
OUR_LOGGERS = ("vrtx", "api")


def record_start(line: str) -> tuple[bool, bool] | None:
    """``(starts a record, shown when quiet)`` for a line that starts a record; None for a continuation line."""
    if found := OURS.match(line):
        level, logger = found.group(1).upper(), found.group(2)
        ours = logger.split(".", 1)[0] in OUR_LOGGERS or logger.startswith("vrtx_pipelines")
        return True, level in SEVERE or (ours and level == "WARNING")
    if found := DAGSTER.match(line):
        # A run's events (and their stack traces) are told once and readably by the activity feed.
        return True, found.group(2).upper() in SEVERE and not RUN_EVENT.match(found.group(3))
    if found := UVICORN.match(line):
        return True, found.group(1) in SEVERE
    if line.startswith(TRACEBACK):
        return True, True  # a crash printed outside any logger
    if PYTHON_WARNING.match(line):
        return True, False
    return None


class QuietFilter:
    """Which lines of one child's output the quiet terminal shows: whole records, continuation lines included."""

    def __init__(self) -> None:
        self._showing = False

    def shows(self, line: str) -> bool:
        started = record_start(line)
        if started is not None:
            self._showing = started[1]
        return self._showing


class Terminal:
    """The dev terminal: one writer at a time, so lines from several threads never interleave."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out or sys.stdout
        self._lock = threading.Lock()
        # Set on Ctrl-C: what the children print while they stop (KeyboardInterrupt traces of their workers) goes
        # to the files only.
        self.stopping = threading.Event()

    def write(self, line: str) -> None:
        with self._lock:
            self._out.write(line if line.endswith("\n") else line + "\n")
            self._out.flush()


def pump(name: str, stream: IO[bytes], log_file: Path, terminal: Terminal, *, verbose: bool) -> threading.Thread:
    """A thread copying a child's output, line by line, to ``log_file`` (colour codes removed) and to the terminal:
    everything when ``verbose``, else what ``QuietFilter`` keeps, marked with the child's name."""
    quiet = QuietFilter()

    def run() -> None:
        with log_file.open("a", encoding="utf-8") as out:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                plain = ANSI.sub("", line)
                out.write(plain + "\n")
                out.flush()
                if verbose:
                    terminal.write(line)
                elif quiet.shows(plain) and not terminal.stopping.is_set():
                    terminal.write(f"[{name}] {plain}")
        stream.close()

    thread = threading.Thread(target=run, name=f"vrtx-dev-log-{name}", daemon=True)
    thread.start()
    return thread
