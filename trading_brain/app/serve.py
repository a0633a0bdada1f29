"""`trading-brain up`: run Dagster (webserver + daemon + code server) for one home, behind a guard,
and the Telegram bot when it is configured.

Contract:
- Dagster runs as ``dg dev -w var/dagster/workspace.yaml`` (what Dagster 1.13 recommends: its
  ``dagster dev`` warns that it is superseded by ``dg dev``; same implementation, no warning);
- the Telegram bot (``trading-brain telegram``) runs beside it when TELEGRAM_BOT_TOKEN is set
  (environment or ``.env``) and ``telegram.allowed_user_ids`` names someone; it is a process
  of the service like Dagster's (tagged, own session, stopped with ``up``); its death is
  reported and does not stop Dagster;
- logging (``adapters/service/logpipe.py``): every child's output goes through ``up``: INFO
  and above to the terminal, everything (DEBUG included: daemon ticks, run event logs) to
  ``var/logs/up.log`` (rotating);
- one ``up`` per home, by construction: an exclusive ``flock`` on ``var/up.lock`` held by ``up``
  AND, through the same inherited open file, by its watchdog and its children; the home stays
  locked while any of them lives. A second ``up`` is refused (one line naming the running one)
  while the lock is held, and also while any process tagged with the home is alive
  (``adapters/procs.py``: every process of the service carries ``TRADING_BRAIN_UP_HOME``);
- the lock file's text is information only (pid, URL, start; ``stopping``; empty when stopped),
  never used to guess liveness;
- no process of the home outlives ``up``: its children run in sessions of their own; a watchdog
  (``adapters/watchdog.py``, own session, signals ignored) learns of ``up``'s death by pipe EOF,
  however it died (SIGKILL included), and stops every tagged process; if the watchdog dies,
  ``up`` stops the service;
- SIGINT/SIGTERM/SIGHUP stop it cleanly: SIGINT to each child's group (``dg dev`` ignores
  SIGTERM, reference/dagster.md §1.4), SIGKILL after ``GRACE_S``, then a sweep of every tagged
  process; the lock file is left empty. The handlers are installed before the lock is taken,
  so a Ctrl-C at any moment (startup included) leaves no stale ``var/up.lock`` note;
- the webserver listens on an internal loopback port; the user-facing ``--host/--port`` is served
  by the UI guard (``adapters/guard.py``, rules in ``adapters/guard_rules.py``: Host, Origin,
  cross-site and optional ``TRADING_BRAIN_UI_TOKEN`` checks against DNS rebinding and CSRF);
- ``DAGSTER_HOME`` is ``var/dagster`` with the instance config of ``DAGSTER_YAML`` (pools:
  every pool — ``warehouse`` included — limited to 1; run retries off; telemetry off);
- the code location is named ``trading_brain`` (schedule/sensor state is keyed by it).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from dotenv import dotenv_values

from trading_brain.adapters.service.guard import Guard
from trading_brain.adapters.service.guard_rules import policy_for
from trading_brain.adapters.service.logpipe import LogPipe
from trading_brain.adapters.service.procs import UP_TAG_ENV, describe, stop_tagged, tagged_pids
from trading_brain.adapters.service.watchdog import write_lock_note
from trading_brain.errors import ConfigError
from trading_brain.settings import HOME_ENV, Home, Secrets, load_settings

SENSOR_TIMEOUT_S = 90  # executor ticks are bounded well below this (DESIGN §6)
GRACE_S = 30
SWEEP_GRACE_S = 5
TOKEN_ENV = "TRADING_BRAIN_UI_TOKEN"
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]{16,256}")

DAGSTER_YAML = """\
# Dagster instance for Trading Brain (written by `trading-brain up`; see reference/dagster.md).
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: "dagster/backfill"
        limit: 2
  pools:
    # Every pool gets one slot: `warehouse` (the DuckDB file) serialises all warehouse steps.
    default_limit: 1
    granularity: op
run_retries:
  enabled: false
run_monitoring:
  enabled: true
  max_runtime_seconds: 3600
  # a run whose worker died (e.g. it lost PostgreSQL) is failed after max_runtime_seconds;
  # then its pool slots go back (else the `warehouse` slot stays claimed by it)
  free_slots_after_run_end_seconds: 60
sensors:
  use_threads: true
  num_workers: 4
schedules:
  use_threads: true
  num_workers: 2
retention:
  schedule:
    purge_after_days: 7
  sensor:
    purge_after_days:
      skipped: 1
      failure: 7
      success: -1
"""

WORKSPACE_YAML = """\
load_from:
  - python_module:
      module_name: trading_brain.definitions
      location_name: trading_brain
"""


def prepare_dagster_home(home: Home) -> Path:
    """Create ``var/dagster`` with dagster.yaml and workspace.yaml; return it."""
    dh = home.dagster_home
    dh.mkdir(parents=True, exist_ok=True)
    (dh / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
    (dh / "workspace.yaml").write_text(WORKSPACE_YAML, encoding="utf-8")
    return dh


def dagster_env(home: Home) -> dict[str, str]:
    """The environment of every process of the service (tagged with the home, no UI token)."""
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    env.update({"DAGSTER_HOME": str(home.dagster_home), HOME_ENV: str(home.root),
                UP_TAG_ENV: str(home.root),
                "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS": str(SENSOR_TIMEOUT_S)})
    return env


def ui_token(home: Home) -> str | None:
    """``TRADING_BRAIN_UI_TOKEN`` from the environment or ``<home>/.env`` (None: no token)."""
    env: dict[str, str | None] = {}
    dotenv = home.root / ".env"
    if dotenv.is_file():
        env.update(dotenv_values(dotenv))
    env.update(os.environ)
    token = env.get(TOKEN_ENV) or None
    if token is not None and not _TOKEN_RE.fullmatch(token):
        raise ConfigError(f"{TOKEN_ENV} must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ -")
    return token


def acquire_lock(home: Home, info: dict[str, object]) -> IO[str]:
    """Hold ``var/up.lock`` exclusively or raise ConfigError naming the holder."""
    home.var.mkdir(parents=True, exist_ok=True)
    f = open(home.var / "up.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held for life
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        held = f.read().strip()
        f.close()
        try:
            other = json.loads(held)
            if other.get("state") == "stopping":
                raise ConfigError(f"trading-brain up for {home.root} is still stopping (its "
                                  "watchdog is ending its processes); try again shortly")
            who = f"pid {other['pid']} serving {other['url']} since {other['started']}"
        except (ValueError, KeyError, AttributeError):
            who = "another process"
        raise ConfigError(f"trading-brain up is already running for {home.root}: {who}") from None
    alive = tagged_pids(home.root)
    if alive:
        f.close()
        shown = ", ".join(describe(p) for p in alive[:3]) + (", …" if len(alive) > 3 else "")
        raise ConfigError(f"trading-brain up is not running for {home.root} but {len(alive)} of "
                          f"its processes are: {shown}; stop them first "
                          f"(kill {' '.join(map(str, alive))})")
    write_lock_note(f.fileno(), info)
    return f


def release_lock(lock: IO[str]) -> None:
    """Leave the lock file empty ("not running") and release it."""
    write_lock_note(lock.fileno(), None)
    lock.close()


def listen(host: str, port: int) -> socket.socket:
    """The user-facing listening socket, or ConfigError (port taken, bad address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_watchdog(home: Home, lock: IO[str], grace_s: float = SWEEP_GRACE_S + GRACE_S
                   ) -> tuple[subprocess.Popen[bytes], int]:
    """Start the watchdog; return it and the write end of its pipe (only ``up`` holds it)."""
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trading_brain.adapters.service.watchdog", str(home.root),
             str(read_fd), str(lock.fileno()), str(grace_s)],
            pass_fds=(read_fd, lock.fileno()), start_new_session=True,
            stdin=subprocess.DEVNULL, env={k: v for k, v in os.environ.items()
                                           if k not in (UP_TAG_ENV, TOKEN_ENV)})
    finally:
        os.close(read_fd)
    return proc, write_fd


def telegram_wanted(home: Home) -> tuple[bool, str]:
    """Whether ``up`` starts the Telegram bot, and why (not)."""
    if Secrets.load(home.root).telegram_bot_token is None:
        return False, "Telegram bot off (TELEGRAM_BOT_TOKEN not set)"
    if not load_settings(home).telegram.allowed_user_ids:
        return False, ("Telegram bot not started: telegram.allowed_user_ids is empty "
                       "(nobody could use it)")
    return True, "Telegram bot started (trading-brain telegram)"


def start_child(cmd: list[str], home: Home, lock: IO[str], logs: LogPipe, name: str
                ) -> subprocess.Popen[bytes]:
    """A process of the service: tagged, own session, SIGINT restored, output to ``logs``."""
    proc = subprocess.Popen(cmd, env=dagster_env(home), cwd=home.root, start_new_session=True,
                            pass_fds=(lock.fileno(),), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    logs.attach(name, proc.stdout)
    return proc


def run_up(home: Home, host: str, port: int, allow_hosts: tuple[str, ...] = ()) -> int:
    """Run ``dg dev`` (and the Telegram bot when configured) for ``home`` behind the UI guard
    until signalled; return its code. ``allow_hosts``: further Host names the guard accepts
    (a reverse proxy's public name)."""
    token = ui_token(home)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}"
    stopping: dict[str, float] = {}

    def stop(signum: int, frame: object) -> None:
        stopping.setdefault("at", time.monotonic())

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # before the lock is noted
        signal.signal(sig, stop)
    lock = acquire_lock(home, {"pid": os.getpid(), "url": url,
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    try:
        sock = listen(host, port)
        bot, why_bot = telegram_wanted(home)
        logs = LogPipe(home.logs, sys.stderr)
    except BaseException:  # nothing started yet: leave the lock file empty
        release_lock(lock)
        raise
    watchdog: subprocess.Popen[bytes] | None = None
    pipe_w: int | None = None
    procs: dict[str, subprocess.Popen[bytes]] = {}
    inner = _free_loopback_port()
    guard = Guard(sock, ("127.0.0.1", inner), policy_for(host, port, token, allow_hosts))
    code = 0
    try:
        dh = prepare_dagster_home(home)
        watchdog, pipe_w = start_watchdog(home, lock)
        if "at" not in stopping:
            procs["dagster"] = start_child(
                [str(Path(sys.executable).with_name("dg")), "dev", "-w",
                 str(dh / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(inner),
                 "--log-level", "debug", "--code-server-log-level", "info"],
                home, lock, logs, "dagster")
            if bot:
                procs["telegram"] = start_child(
                    [str(Path(sys.executable).with_name("trading-brain")), "--home",
                     str(home.root), "telegram"], home, lock, logs, "telegram")
            guard.start()
            logs.note(f"Trading Brain for {home.root}: Dagster UI at {url} (Ctrl-C stops)"
                      + (f"; first visit: {url}/?token=<{TOKEN_ENV}>" if token else "")
                      + f"; {why_bot}; DEBUG log in {logs.path}")
        code = _supervise(procs, watchdog, stopping, logs) if watchdog else 1
    finally:
        guard.stop()
        sock.close()
        for proc in procs.values():
            _stop_dagster(proc)
        stop_tagged(home.root, SWEEP_GRACE_S)
        if pipe_w is not None:
            os.write(pipe_w, b"x")
            os.close(pipe_w)
        if watchdog is not None:
            try:
                watchdog.wait(SWEEP_GRACE_S + GRACE_S + 10)
            except subprocess.TimeoutExpired:
                watchdog.kill()
        release_lock(lock)
        logs.close()
    return code


def _supervise(procs: dict[str, subprocess.Popen[bytes]], watchdog: subprocess.Popen[bytes],
               stopping: dict[str, float], logs: LogPipe) -> int:
    """Wait for a signal; Dagster or the watchdog dying ends ``up``, the bot dying does not."""
    bot_noted = False
    while "at" not in stopping and "dagster" in procs:
        if watchdog.poll() is not None:
            logs.note(f"error: the watchdog of up died (code {watchdog.returncode}); stopping")
            return 1
        if procs["dagster"].poll() is not None:
            return procs["dagster"].returncode or 0
        bot = procs.get("telegram")
        if bot is not None and bot.poll() is not None and not bot_noted:
            logs.note(f"warning: the Telegram bot stopped (code {bot.returncode}); Dagster "
                      "keeps running; see the log above")
            bot_noted = True
        time.sleep(0.2)
    return 0


def _stop_dagster(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT a child's group (``dg dev``, the bot), SIGKILL it after ``GRACE_S``."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGINT)
        try:
            proc.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc, signal.SIGKILL)
    proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
