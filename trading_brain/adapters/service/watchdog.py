"""The watchdog of ``trading-brain up``: no process of the home outlives ``up``, even on SIGKILL.

Run by ``up`` as ``python -m trading_brain.adapters.service.watchdog ROOT PIPE_FD LOCK_FD
GRACE_S`` in a session of its own (a terminal's Ctrl-C or a group kill of ``up`` does not reach it).

Contract:
- ``PIPE_FD`` is the read end of a pipe whose only write end ``up`` holds: it reads EOF exactly
  when ``up`` is gone, however it died (no ``getppid`` polling, no PDEATHSIG thread caveats);
- ``LOCK_FD`` is ``up``'s open ``var/up.lock`` (same open file description, so the same
  ``flock``): the home stays locked until the watchdog has stopped every process of the service;
- ``up`` writes ``b"x"`` before it closes the pipe when it stopped the service itself; on a bare
  EOF the watchdog marks the lock file ``stopping``, stops every process tagged with the home
  (``procs.stop_tagged``: SIGINT, then SIGKILL after ``GRACE_S``), empties the lock file, exits;
- SIGINT, SIGTERM and SIGHUP are ignored: only SIGKILL ends it early (``up`` then stops the
  service itself, see ``service.run_up``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from trading_brain.adapters.service.procs import stop_tagged


def write_lock_note(lock_fd: int, note: dict[str, object] | None) -> None:
    """Replace the text of the lock file (``None``: leave it empty, i.e. "not running")."""
    os.ftruncate(lock_fd, 0)
    if note is not None:
        os.write(lock_fd, json.dumps(note).encode())


def watch(root: Path, pipe_fd: int, lock_fd: int, grace_s: float) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            said = os.read(pipe_fd, 1)
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
    if said == b"x":  # up stopped everything itself; sweep anything that slipped through
        stop_tagged(root, grace_s)
        return 0
    write_lock_note(lock_fd, {"state": "stopping", "since":
                              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    killed = stop_tagged(root, grace_s)
    write_lock_note(lock_fd, None)
    try:
        print(f"trading-brain up for {root} died; watchdog stopped its processes"
              f"{f' (killed {len(killed)})' if killed else ''}", file=sys.stderr, flush=True)
    except OSError:  # the terminal went away with up
        pass
    return 0


def main(argv: list[str]) -> int:
    root, pipe_fd, lock_fd, grace_s = argv
    return watch(Path(root), int(pipe_fd), int(lock_fd), float(grace_s))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
