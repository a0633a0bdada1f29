"""One worker OS process seen from the host: spawn, framed request/reply with deadlines, kill.

Contract: ``replies(head, payload, timeout, count)`` writes the JSON header frame (and the
optional binary frame) without ever blocking past the deadline, then reads exactly ``count``
reply frames, each parsed with ``protocol.parse_reply`` and due within ``timeout`` of the
request or of the previous frame (and never after ``until``, an absolute ``time.monotonic()``
bound); ``request`` is the one-frame case. It raises ``WorkerTimeout`` at a deadline,
``WorkerDied`` when the worker exits, sends unsolicited bytes, announces a frame above the reply
cap, or trails data after its last reply, ``WorkerChatty`` when the worker writes more than
``max_output`` bytes to its stdout/stderr (fd 1 points at stderr in the worker) while one frame is
due or between two requests, and ``pydantic.ValidationError`` for a malformed reply. The caller
kills the process (``kill``: ``killpg`` SIGKILL of the worker's own session, then reap) after
any of these. stderr is drained continuously so a chatty worker cannot block; only its tail is
kept, for diagnostics. ``alive()`` tells whether the process still runs.

Every worker of this process is spawned by ONE long-lived daemon thread (``sandbox-spawner``):
the worker arms PR_SET_PDEATHSIG, and Linux sends that signal when the spawning *thread* exits, so
a worker started from a short-lived thread would otherwise die with that thread. ``on_boot_thread``
runs any job on that same thread (the worker pool boots workers there in the background); a job
already on it spawns directly. ``HOST_PID_ENV`` in the worker's environment names the host pid
the worker checks its parent against.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import queue
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from trading_brain.adapters.sandbox.protocol import HEADER, frame, parse_reply
from trading_brain.adapters.sandbox.text import safe_text

STDERR_TAIL = 2000
MAX_OUTPUT_BYTES = 16 << 20  # stdout/stderr of one request (prints); past it: killed
HOST_PID_ENV = "TB_SANDBOX_HOST_PID"
WORKER = Path(__file__).with_name("worker.py")
WORKER_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "POLARS_MAX_THREADS": "2",
              "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


class WorkerTimeout(Exception):
    """The worker did not answer before the deadline."""


class WorkerDied(Exception):
    """The worker exited or broke the framing."""


class WorkerChatty(Exception):
    """The worker wrote more than its output cap to stdout/stderr."""


_spawner_lock = threading.Lock()
_spawner: tuple[int, queue.SimpleQueue, threading.Thread] | None = None  # (pid, jobs, thread)
T = TypeVar("T")


def _spawner_main(jobs: queue.SimpleQueue) -> None:
    while True:
        fn, fut = jobs.get()
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            fut.set_result(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            fut.set_exception(e)


def on_boot_thread(fn: Callable[[], T]) -> Future[T]:
    """Run ``fn`` on this process's one long-lived spawner thread; its future."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():  # first use, or a forked child
            jobs: queue.SimpleQueue = queue.SimpleQueue()
            thread = threading.Thread(target=_spawner_main, args=(jobs,), name="sandbox-spawner",
                                      daemon=True)
            thread.start()
            _spawner = (os.getpid(), jobs, thread)
        jobs = _spawner[1]
    fut: Future[T] = Future()
    jobs.put((fn, fut))
    return fut


def _spawn(fn: Callable[[], subprocess.Popen]) -> subprocess.Popen:
    """Run ``fn`` (a Popen) on the spawner thread (directly when already on it)."""
    spawner = _spawner
    if spawner is not None and spawner[2] is threading.current_thread():
        return fn()
    return on_boot_thread(fn).result()


def import_paths() -> list[str]:
    """Project root plus the directories holding the worker's dependencies."""
    dirs = [str(Path(__file__).resolve().parents[3])]
    for mod in ("numpy", "polars", "pydantic", "pydantic_core", "pyseccomp"):
        spec = importlib.util.find_spec(mod)
        if spec and spec.origin:
            origin = Path(spec.origin)
            dirs.append(str(origin.parent.parent if origin.name == "__init__.py"
                            else origin.parent))
    return list(dict.fromkeys(dirs))


def launch(python: str, max_reply: int, max_output: int) -> WorkerProcess:
    """``python -I -B worker.py`` in an empty temporary cwd (removed when killed) with a minimal
    environment; raises OSError when it cannot start."""
    cwd = tempfile.mkdtemp(prefix="tb-sandbox-")
    try:
        proc = WorkerProcess([python, "-I", "-B", str(WORKER)],
                             {**WORKER_ENV, "HOME": cwd, "TMPDIR": cwd}, cwd, max_reply,
                             max_output)
    except OSError:
        shutil.rmtree(cwd, ignore_errors=True)
        raise
    proc.on_close = lambda: shutil.rmtree(cwd, ignore_errors=True)
    return proc


class WorkerProcess:
    """A spawned worker with non-blocking pipes."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, max_reply: int,
                 max_output: int = MAX_OUTPUT_BYTES) -> None:
        env = {**env, HOST_PID_ENV: str(os.getpid())}
        self.proc = _spawn(lambda: subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            close_fds=True,
            start_new_session=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ))
        self.max_reply, self.max_output = max_reply, max_output
        self._output = 0  # stdout/stderr bytes since the current request started
        self.on_close: Callable[[], None] | None = None
        self.stderr_tail = b""
        stdin, stdout, stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None  # PIPE: all set
        self._in, self._out, self._err = stdin.fileno(), stdout.fileno(), stderr.fileno()
        for fd in (self._in, self._out, self._err):
            os.set_blocking(fd, False)
        for fd in (self._in, self._out):
            try:
                fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)  # fewer wake-ups for big frames
            except OSError:
                pass

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the worker process is still running (not exited, not killed)."""
        return self.proc.poll() is None

    def request(self, head: bytes, payload: bytes | None, timeout: float,
                until: float | None = None) -> object:
        """Send one request and return its one parsed reply (see the module docstring)."""
        (reply,) = self.replies(head, payload, timeout, 1, until)
        return reply

    def replies(self, head: bytes, payload: bytes | None, timeout: float, count: int,
                until: float | None = None) -> Iterator[object]:
        """Send one request, then yield ``count`` parsed reply frames (see the module
        docstring); the generator must be run to its end (or the worker killed)."""
        def due() -> float:
            deadline = time.monotonic() + timeout
            return deadline if until is None else min(deadline, until)

        deadline = due()
        if self._pending():
            raise WorkerDied("unsolicited output between calls (forged reply)")
        self._output = 0
        data = frame(head) + (frame(payload) if payload is not None else b"")
        self._send(memoryview(data), deadline)
        buf = bytearray()
        for _ in range(count):
            body = self._receive(deadline, buf)
            yield parse_reply(body)
            deadline, self._output = due(), 0
        if buf:
            raise WorkerDied("trailing bytes after the reply (forged frame)")

    def _pending(self) -> bool:
        self._drain_stderr()
        r, _, _ = select.select([self._out], [], [], 0)
        return bool(r)

    def _wait(self, deadline: float, write: bool) -> list[int]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkerTimeout
        r, w, _ = select.select([self._out, self._err], [self._in] if write else [], [], remaining)
        if self._err in r:
            self._drain_stderr()
        return r + w

    def _send(self, view: memoryview, deadline: float) -> None:
        while view:
            ready = self._wait(deadline, write=True)
            if self._out in ready:
                if self.proc.poll() is not None:
                    raise WorkerDied(self._death("exited while receiving"))
                raise WorkerDied("output before the whole request was read (forged reply)")
            if self._in in ready:
                try:
                    view = view[os.write(self._in, view[: 1 << 20]) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    raise WorkerDied(self._death("closed its input")) from None

    def _receive(self, deadline: float, buf: bytearray) -> bytes:
        """The body of the next frame; ``buf`` holds bytes already read past earlier frames
        and keeps those read past this one."""
        need: int | None = None
        while True:
            if need is None and len(buf) >= HEADER.size:
                size = HEADER.unpack_from(buf)[0]
                if size > self.max_reply:
                    raise WorkerDied(f"reply of {size} bytes exceeds the cap of {self.max_reply}")
                need = HEADER.size + size
            if need is not None and len(buf) >= need:
                break
            if self._out not in self._wait(deadline, write=False):
                continue
            chunk = os.read(self._out, 1 << 20)
            if not chunk:
                raise WorkerDied(self._death("exited"))
            buf += chunk
        body = bytes(buf[HEADER.size:need])
        del buf[:need]
        return body

    def _drain_stderr(self, limit: bool = True) -> None:
        try:
            while chunk := os.read(self._err, 1 << 20):
                self.stderr_tail = (self.stderr_tail + chunk)[-STDERR_TAIL:]
                self._output += len(chunk)
                if limit and self._output > self.max_output:
                    raise WorkerChatty(
                        f"the strategy wrote more than {self.max_output} bytes to stdout/stderr "
                        "(print or logging) in one call")
        except (BlockingIOError, OSError):
            pass

    def _death(self, what: str) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        self._drain_stderr(limit=False)
        how = (
            f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        )
        tail = safe_text(self.stderr_tail.decode("utf-8", "replace").strip()[-800:])
        return f"worker {what} ({how})" + (f"; stderr tail: {tail}" if tail else "")

    def cpu_exhausted(self, budget_s: float) -> bool:
        """Whether the worker used more than ``budget_s`` CPU seconds (from /proc/<pid>/stat)."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            return ticks / os.sysconf("SC_CLK_TCK") > budget_s
        except (OSError, IndexError, ValueError):
            return False

    def kill(self) -> None:
        """SIGKILL the worker's whole session, reap it, close pipes, run ``on_close``."""
        for kill in (lambda: os.killpg(self.proc.pid, signal.SIGKILL), self.proc.kill):
            try:
                kill()  # the session's group, and the pid itself should it have left the group
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        if self.on_close is not None:
            self.on_close()
            self.on_close = None
