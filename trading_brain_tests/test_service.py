"""`trading-brain up`: one per home, serves the UI behind its guard, and leaves nothing behind
when stopped by SIGTERM, SIGINT or SIGKILL (issue 9 parts 1 and 6; real Dagster processes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from trading_brain.app.serve import acquire_lock, ui_token
from trading_brain.errors import ConfigError
from trading_brain.settings import Home
from trading_brain_tests.test_cli import (
    EXE,
    assert_one_line_error,
    initialised_small_home,
    small_home,
    tb,
)


def test_second_up_is_refused_naming_the_running_one(tmp_path):
    home = Home(small_home(tmp_path / "h"))
    lock = acquire_lock(home, {"pid": 4242, "url": "http://127.0.0.1:3999", "started": "t0"})
    try:
        with pytest.raises(ConfigError, match="already running.*pid 4242 serving http://127.0.0.1:3999"):
            acquire_lock(home, {"pid": 1, "url": "x", "started": "t1"})
    finally:
        lock.close()
    acquire_lock(home, {"pid": 1, "url": "x", "started": "t1"}).close()  # free again


def test_the_ui_token_comes_from_the_environment_or_dotenv(tmp_path, monkeypatch):
    home = Home(small_home(tmp_path / "h"))
    monkeypatch.delenv("TRADING_BRAIN_UI_TOKEN", raising=False)
    assert ui_token(home) is None
    (home.root / ".env").write_text("TRADING_BRAIN_UI_TOKEN=from-dotenv-0123456789\n")
    assert ui_token(home) == "from-dotenv-0123456789"
    monkeypatch.setenv("TRADING_BRAIN_UI_TOKEN", "from-env-0123456789ab")
    assert ui_token(home) == "from-env-0123456789ab"
    monkeypatch.setenv("TRADING_BRAIN_UI_TOKEN", "short")
    with pytest.raises(ConfigError, match="16 to 256 characters"):
        ui_token(home)


def test_up_on_a_taken_port_is_one_line_and_leaves_the_home_unlocked(tmp_path, tmp_path_factory):
    home = initialised_small_home(tmp_path_factory, tmp_path / "h")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = tb(home, "up", "--port", str(port), check=False)
    assert_one_line_error(proc, f"cannot listen on 127.0.0.1:{port}")
    assert (home / "var" / "up.lock").read_text() == ""
    acquire_lock(Home(home), {"pid": 1, "url": "x", "started": "t"}).close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _home_pids(home: Path) -> list[int]:
    """Every process whose environment or command line names the home (ours excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                environ = (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes()
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            if stat[stat.rindex(b")") + 2:][:1] == b"Z":
                continue
            if f"DAGSTER_HOME={home}/var/dagster".encode() in environ or str(home).encode() in \
                    cmdline.replace(b"--home\0" + str(home).encode(), b""):
                pids.append(int(entry.name))
    return pids


def _start_up(home: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRADING_BRAIN_HOME",
                                                            "TRADING_BRAIN_UI_TOKEN")}
    proc = subprocess.Popen([str(EXE), "--home", str(home), "up", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                assert "dagster_webserver_version" in json.loads(r.read())
                return proc
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise AssertionError("webserver never answered")


def _wait_gone(home: Path, seconds: float = 90) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _home_pids(home)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def _get(port: int, host: str, path: str = "/server_info", **headers: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
        extra = extra or "Connection: close\r\n"
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if headers and b"\r\n\r\n" in data:
                break
        return data


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_up_survives_nothing_of_itself_on_sigkill_then_sigterm(tmp_path, tmp_path_factory):
    home = initialised_small_home(tmp_path_factory, tmp_path / "h")
    home = home.resolve()
    port = _free_port()
    first = _start_up(home, port)
    try:
        assert len(_home_pids(home)) >= 4  # watchdog, dagster dev, webserver, daemon, code server
        second = tb(home, "up", "--port", str(_free_port()), check=False)
        assert_one_line_error(second, f"already running for {home}: pid {first.pid}")
        # the guard in front of the real webserver (part 6)
        assert _get(port, f"localhost:{port}").startswith(b"HTTP/1.1 200")
        refused = _get(port, f"evil.example:{port}")
        assert refused.startswith(b"HTTP/1.1 403") and b"not this Trading Brain UI" in refused
        ws = _get(port, f"127.0.0.1:{port}", "/graphql", Upgrade="websocket",
                  Connection="Upgrade", Origin=f"http://127.0.0.1:{port}",
                  Sec_WebSocket_Version="13", Sec_WebSocket_Key="dGhlIHNhbXBsZSBub25jZQ==",
                  Sec_WebSocket_Protocol="graphql-ws")
        assert ws.startswith(b"HTTP/1.1 101"), ws[:200]
        first.kill()  # SIGKILL: nothing of the home may survive it
        first.wait(10)
        assert _wait_gone(home) == []
    finally:
        first.kill()
    assert (home / "var" / "up.lock").read_text() == ""
    again = _start_up(home, port)  # accepted once the first one is gone
    try:
        again.send_signal(signal.SIGTERM)
        again.wait(90)
        assert again.returncode == 0, again.stderr.read()
    finally:
        again.kill()
    assert _home_pids(home) == []
    assert (home / "var" / "up.lock").read_text() == ""


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_up_stops_cleanly_on_sigint(tmp_path, tmp_path_factory):
    home = initialised_small_home(tmp_path_factory, tmp_path / "h")
    home = home.resolve()
    proc = _start_up(home, _free_port())
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(90)
        assert proc.returncode == 0, proc.stderr.read()
    finally:
        proc.kill()
    assert _home_pids(home) == []
    assert (home / "var" / "up.lock").read_text() == ""
    tb(home, "status")
