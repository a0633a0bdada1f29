"""`trading-brain up`: one per home, serves the UI, stops cleanly on SIGTERM without orphans."""

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

from trading_brain.errors import ConfigError
from trading_brain.service import acquire_lock
from trading_brain.settings import Home
from trading_brain_tests.test_cli import EXE, assert_one_line_error, small_home, tb


def test_second_up_is_refused_naming_the_running_one(tmp_path):
    home = Home(small_home(tmp_path / "h"))
    lock = acquire_lock(home, {"pid": 4242, "url": "http://127.0.0.1:3999", "started": "t0"})
    try:
        with pytest.raises(ConfigError, match="already running.*pid 4242 serving http://127.0.0.1:3999"):
            acquire_lock(home, {"pid": 1, "url": "x", "started": "t1"})
    finally:
        lock.close()
    acquire_lock(home, {"pid": 1, "url": "x", "started": "t1"}).close()  # free again


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dagster_pids(home: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if f"DAGSTER_HOME={home}/var/dagster".encode() in environ:
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_up_serves_the_ui_and_stops_cleanly(tmp_path):
    home = small_home(tmp_path / "h")
    tb(home, "init", "--no-bootstrap", "--strategy", "none")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "TRADING_BRAIN_HOME"}
    proc = subprocess.Popen([str(EXE), "--home", str(home), "up", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 180
        info = None
        while time.monotonic() < deadline and info is None:
            assert proc.poll() is None, proc.stderr.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                    info = json.loads(r.read())
            except OSError:
                time.sleep(1)
        assert info is not None, "webserver never answered"
        assert "dagster_webserver_version" in info
        second = tb(home, "up", "--port", str(_free_port()), check=False)
        assert_one_line_error(second, f"already running for {home.resolve()}: pid {proc.pid}")
        assert _dagster_pids(home.resolve())  # webserver/daemon/code server are running
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    time.sleep(1)
    assert proc.returncode == 0
    assert _dagster_pids(home.resolve()) == []  # no orphans
