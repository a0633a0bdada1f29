"""Shared helpers of the sandbox tests: corpora, bars, canaries and an in-process loader.

Canaries (reference/sandbox.md §6): a fake API key in THIS process's environment and in a
world-readable ``.env``, and this process's initial environment (what ``/proc/<pid>/environ``
shows: variables set later, like the fake key, are not visible there); a world-writable directory
where ``PWNED_*`` files must never appear; a
loopback TCP listener and an abstract unix listener that must receive 0 connections, and a
world-writable path datagram socket (``dgram.sock``, like ``/dev/log``) that must receive nothing;
a SIGUSR1
counter that must stay 0; ``TracerPid`` of this process must stay 0; success markers that an attack
prints only when it worked.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.adapters.sandbox.protocol import Layers
from trading_brain.domain.strategy import validate_signals
from trading_brain.errors import StrategyError
from trading_brain_tests.conftest import require_shared

HERE = Path(__file__).resolve().parent
ESCAPES = HERE / "escapes"
LEGIT = HERE / "legit"
REPO = HERE.parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
MARKERS = (
    "sk-canary",
    "EXECUTED",
    "FORKED",
    "KILLED",
    "PTRACED",
    "SETUID0",
    "CONNECTED",
    "ALLOCATED",
    "root:x:0",
    "uid=0",
    "DGRAM_SENT",
    "SOCKET_OPENED",
)


def synthetic_bars(n: int = 60) -> pl.DataFrame:
    start = datetime(2024, 3, 30, tzinfo=UTC)
    close = 100 + np.cumsum(np.sin(np.arange(n) / 7.0))
    return pl.DataFrame(
        {
            "ts": pl.datetime_range(
                start, start + timedelta(minutes=5 * (n - 1)), "5m", eager=True, time_unit="us"
            ),
            "open": close,
            "high": close + 0.5,
            "low": close - 0.5,
            "close": close,
            "volume": np.linspace(1.0, 2.0, n),
        }
    )


def real_bars(n: int, name: str = "binance_BTCUSDT_5m_2024H1.csv.gz") -> pl.DataFrame:
    """The first ``n`` rows of a real candle file from ../shared/data (skips when absent)."""
    path = SHARED_DATA / "candles" / name
    require_shared(path, "real candle data")
    df = pl.read_csv(path, n_rows=n)
    ts = pl.col("timestamp").str.to_datetime(time_unit="us", time_zone="UTC")
    return df.select(
        ts.alias("ts"),
        *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")],
    )


def load_in_process(source: str, name: str) -> types.ModuleType:
    """Exec trusted corpus source in this process (the differential baseline)."""
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)
    return mod


def in_process_generate(mod: types.ModuleType, bars: pl.DataFrame, params: dict) -> pl.DataFrame:
    return validate_signals(mod.generate(bars, mod.Params(**params)), bars)


@dataclass
class Canaries:
    key: str
    root: Path
    token: str
    tcp: socket.socket
    unix: socket.socket
    abstract: str
    dgram: socket.socket
    usr1: list[int] = field(default_factory=lambda: [0])

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    def render(self, source: str) -> str:
        subs = {
            "@@CANARY_DIR@@": str(self.root),
            "@@CANARY_ENV@@": str(self.env_file),
            "@@CANARY_PORT@@": str(self.tcp.getsockname()[1]),
            "@@CANARY_ABSTRACT@@": self.abstract,
            "@@TOKEN@@": self.token,
        }
        for k, v in subs.items():
            source = source.replace(k, v)
        return source

    def _accepts(self, sock: socket.socket) -> int:
        n = 0
        sock.setblocking(False)
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, OSError):
                return n
            conn.close()
            n += 1

    def _datagrams(self) -> int:
        n = 0
        self.dgram.setblocking(False)
        while True:
            try:
                self.dgram.recv(65536)
            except (BlockingIOError, OSError):
                return n
            n += 1

    def violations(self, messages: list[str]) -> list[str]:
        """Every canary that tripped (empty = contained)."""
        out = [f"key leaked: {m[:200]}" for m in messages if self.key in m]
        out += [
            f"parent env leaked ({e[:30]}): {m[:200]}"
            for m in messages
            for e in PARENT_ENV
            if e in m
        ]
        out += [f"marker {k}: {m[:200]}" for m in messages for k in MARKERS if k in m]
        pwned = glob.glob(str(self.root / "PWNED*")) + glob.glob("/tmp/PWNED*")
        pwned += glob.glob(f"/dev/shm/PWNED*{self.token}*")
        out += [f"file written: {p}" for p in pwned]
        if n := self._accepts(self.tcp):
            out.append(f"tcp listener got {n} connection(s)")
        if n := self._accepts(self.unix):
            out.append(f"abstract unix listener got {n} connection(s)")
        if n := self._datagrams():
            out.append(f"path dgram listener got {n} datagram(s)")
        if self.usr1[0]:
            out.append(f"parent received {self.usr1[0]} SIGUSR1")
        if tracer_pid() != 0:
            out.append("parent is being traced")
        return out

    def close(self) -> None:
        self.tcp.close()
        self.unix.close()
        self.dgram.close()
        shutil.rmtree(self.root, ignore_errors=True)
        for p in glob.glob(f"/dev/shm/PWNED*{self.token}*"):
            os.unlink(p)


def _parent_env() -> frozenset[str]:
    """This process's INITIAL environment as /proc shows it (``os.environ`` changes, such as the
    fake key, are not visible there), minus entries the worker legitimately has itself."""
    raw = Path("/proc/self/environ").read_bytes().decode("utf-8", "replace").split("\0")
    worker_like = (
        "PATH=/usr/bin:/bin",
        "LANG=",
        "HOME=/tmp",
        "TMPDIR=",
        "POLARS_",
        "OMP_",
        "OPENBLAS_",
        "MKL_",
    )
    return frozenset(e for e in raw if len(e) >= 8 and "=" in e and not e.startswith(worker_like))


PARENT_ENV = _parent_env()


def tracer_pid() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    return 0


def make_canaries() -> Canaries:
    key = "sk-canary-" + secrets.token_hex(12)
    root = Path(tempfile.mkdtemp(prefix="tb-canary-"))
    root.chmod(0o777)  # so only the sandbox, not file permissions, stops writes
    (root / ".env").write_text(f"ANTHROPIC_API_KEY={key}\n")
    (root / ".env").chmod(0o644)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    abstract = "tb-canary-" + secrets.token_hex(6)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind("\0" + abstract)
    unix.listen(16)
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # a /dev/log-style path socket
    dgram.bind(str(root / "dgram.sock"))
    (root / "dgram.sock").chmod(0o777)
    return Canaries(key, root, secrets.token_hex(6), tcp, unix, abstract, dgram)


@dataclass
class Outcome:
    messages: list[str]
    gate_rejected: bool = False
    booted: bool = False
    failed: bool = True


def run_case(
    source: str,
    *,
    gate: bool = False,
    layers: Layers | None = None,
    allow_weak: bool = False,
    timeout: float = 5.0,
    bars: pl.DataFrame | None = None,
) -> Outcome:
    """Load ``source`` in a fresh sandbox, call generate once, collect every message/output."""
    try:
        s = SandboxedStrategy(
            source,
            static_gate=gate,
            timeout_s=timeout,
            layers=layers,
            allow_weak_isolation=allow_weak,
        )
    except StrategyError as e:
        return Outcome([str(e)], gate_rejected=True)
    out = Outcome([])
    try:
        s.start()
        out.booted = True
        frame = s.generate(bars if bars is not None else synthetic_bars())
        out.messages.append(str(frame.rows()))
        out.failed = False
    except StrategyError as e:
        out.messages.append(f"{type(e).__name__}: {e}")
    finally:
        s.close()
    return out


def install_usr1_counter(c: Canaries) -> object:
    def handler(signum: int, frame: object) -> None:
        c.usr1[0] += 1

    return signal.signal(signal.SIGUSR1, handler)
