"""The sandbox started by an unprivileged host (uid 65534 via setpriv): the userns + netns path.

The venv interpreter lives under /root (0700 here), which uid 65534 cannot read, so the host runs
on the system ``/usr/bin/python3`` (same 3.11 ABI) with the venv's site-packages on ``sys.path``;
skipped with the reason when that pathway is unavailable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from trading_brain_tests.adapters.sandbox.helpers import HERE, REPO

pytestmark = pytest.mark.slow
ATTACKS = [
    "a01_parent_environ",
    "a02_read_dotenv",
    "a07_tcp_connect",
    "a09_fork",
    "a11_kill_parent",
]
SYSTEM_PYTHON = "/usr/bin/python3"


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to switch to uid 65534 with setpriv"
    if not shutil.which("setpriv"):
        return "setpriv not installed"
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    if probe.stdout.strip() != str(tuple(sys.version_info[:2])):
        return f"{SYSTEM_PYTHON} is {probe.stdout.strip()}, the venv is {sys.version_info[:2]}"
    if not os.access(sysconfig.get_paths()["purelib"], os.R_OK) or (
        os.stat(REPO).st_mode & 0o005 != 0o005
    ):
        return "the venv or the checkout is not world-readable"
    return None


@pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))
def test_sandbox_holds_when_the_host_is_unprivileged(canaries):
    subs = {
        "@@CANARY_DIR@@": str(canaries.root),
        "@@CANARY_ENV@@": str(canaries.env_file),
        "@@CANARY_PORT@@": str(canaries.tcp.getsockname()[1]),
        "@@CANARY_ABSTRACT@@": canaries.abstract,
        "@@TOKEN@@": canaries.token,
    }
    args = {
        "sys_path": [str(REPO), sysconfig.get_paths()["purelib"]],
        "attacks": ATTACKS,
        "subs": subs,
    }
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "ANTHROPIC_API_KEY": canaries.key}
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            SYSTEM_PYTHON,
            "-I",
            "-B",
            str(HERE / "unprivileged_runner.py"),
            json.dumps(args),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd="/tmp",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    layers = result["layers"]
    assert layers["seccomp"] and layers["landlock_abi"] >= 1 and layers["no_new_privs"], layers
    assert layers["netns"] and not layers["uid_drop"] and layers["uid"] == 65534, layers
    assert result["identical"] is True
    assert result["usr1"] == 0
    messages = list(result["messages"].values())
    assert len(messages) == len(ATTACKS) and all("Error" in m for m in messages), messages
    assert canaries.violations(messages) == []
    assert canaries.key not in proc.stdout + proc.stderr
