"""The output of ``up``'s children: INFO and above on the terminal, everything in ``var/logs/``.

Contract:
- ``LogPipe(logs_dir, terminal)`` writes ``logs_dir/up.log``, a rotating file (``MAX_BYTES``,
  ``BACKUPS`` old files), and ``terminal`` (``up``'s stderr);
- ``attach(name, stream)`` reads a child's merged stdout/stderr line by line in a daemon
  thread. A line's level is the first `` - LEVEL - `` token in it (Dagster's console format:
  services, daemon, code server and run workers' event logs); a line without one (a traceback,
  a continuation, a plain ``print``) keeps the level of the line before it from the same child
  (``INFO`` at first). Every line goes to the file, colour codes stripped and prefixed with
  ``name``; lines at INFO or above also go to the terminal as the child wrote them;
- ``note(text)`` writes one line of ``up``'s own to both; ``close()`` waits (bounded) for the
  readers to reach their children's EOF and closes the file. A terminal that went away
  (``OSError``) only stops the terminal copy; the file keeps everything.
"""

from __future__ import annotations

import logging
import re
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
_LEVEL = re.compile(r" - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - ")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RANK = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
         "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}


def level_of(line: str, previous: int) -> int:
    """The logging level a line carries (``previous`` when it names none)."""
    m = _LEVEL.search(_ANSI.sub("", line))
    return _RANK[m.group(1)] if m else previous


class LogPipe:
    def __init__(self, logs_dir: Path, terminal: IO[str]) -> None:
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.path = logs_dir / "up.log"
        self._file = RotatingFileHandler(self.path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                         encoding="utf-8")
        self._file.setFormatter(logging.Formatter("%(message)s"))
        self._terminal: IO[str] | None = terminal
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _write(self, name: str, level: int, line: str) -> None:
        record = logging.LogRecord(name, level, "", 0, f"[{name}] {_ANSI.sub('', line)}",
                                   None, None)
        with self._lock:
            self._file.emit(record)
            if level >= logging.INFO and self._terminal is not None:
                try:
                    self._terminal.write(line + "\n")
                    self._terminal.flush()
                except (OSError, ValueError):  # the terminal went away with its session
                    self._terminal = None

    def note(self, text: str) -> None:
        self._write("up", logging.INFO, text)

    def attach(self, name: str, stream: IO[bytes]) -> None:
        def pump() -> None:
            level = logging.INFO
            with stream:
                for raw in iter(stream.readline, b""):
                    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    level = level_of(line, level)
                    self._write(name, level, line)

        t = threading.Thread(target=pump, name=f"log-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def close(self, timeout_s: float = 5.0) -> None:
        for t in self._threads:
            t.join(timeout_s)
        with self._lock:
            self._file.close()
