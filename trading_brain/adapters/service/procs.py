"""Find and stop every process of one home's ``up`` service through ``/proc`` (Linux).

Contract:
- every process ``up`` starts carries ``TRADING_BRAIN_UP_HOME=<home root>`` in its environment;
  Dagster passes its environment on, so webserver, daemon, code servers, run workers and step
  processes all carry it, even after they leave the process group or are re-parented to init;
- ``tagged_pids(root)`` lists the live (non-zombie) processes carrying the tag of ``root``, the
  caller excluded; processes of other users (unreadable ``environ``) are not seen;
- ``stop_tagged(root, grace_s)`` sends SIGINT to all of them (Dagster's clean stop), waits up to
  ``grace_s`` for them to exit, then SIGKILLs the rest until none is left; it returns the pids it
  had to kill.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

UP_TAG_ENV = "TRADING_BRAIN_UP_HOME"
_POLL_S = 0.1


def _tag(root: Path) -> bytes:
    return f"{UP_TAG_ENV}={root}".encode()


def _alive(pid: int) -> bool:
    """True unless ``pid`` is gone or a zombie (a zombie holds no file or socket)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] not in (b"Z", b"X")


def tagged_pids(root: Path) -> list[int]:
    """Live processes whose environment tags them as part of ``root``'s service."""
    tag, me, found = _tag(root), os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if tag in environ.split(b"\0") and _alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def describe(pid: int) -> str:
    """``pid 123 (dagster-daemon run)``: the pid and the first words of its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [Path(a.decode(errors="replace")).name if i == 0 else a.decode(errors="replace")
             for i, a in enumerate(argv[:4]) if a]
    if words and words[0].startswith("python") and len(words) > 1:
        words = [Path(words[1]).name, *words[2:]]
    return f"pid {pid} ({' '.join(words)[:60]})"


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_tagged(root: Path, grace_s: float) -> list[int]:
    """SIGINT every process of ``root``'s service, SIGKILL what is left after ``grace_s``."""
    pids = tagged_pids(root)
    if not pids:
        return []
    _signal_all(pids, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while pids and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        pids = tagged_pids(root)
    killed: list[int] = []
    while pids:  # a process forked during the sweep is caught on the next pass
        killed.extend(p for p in pids if p not in killed)
        _signal_all(pids, signal.SIGKILL)
        time.sleep(_POLL_S)
        pids = tagged_pids(root)
    return killed
