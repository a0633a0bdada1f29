"""deploy/ansible: both playbooks pass ``ansible-playbook --syntax-check`` and ansible-lint
(production profile). Ansible is not a project dependency (~130 MB): the tools are looked up in
``$TB_ANSIBLE_BIN`` (``.ci/run`` installs them into a throwaway venv), then on PATH; the test
skips without them locally and fails without them under ``CI=true``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ANSIBLE = Path(__file__).resolve().parents[2] / "deploy" / "ansible"
PLAYBOOKS = ["setup.yml", "deploy.yml"]


def tool(name: str) -> str:
    where = os.environ.get("TB_ANSIBLE_BIN")
    found = shutil.which(name, path=where) if where else shutil.which(name)
    if found is None:
        msg = f"{name} not installed (pip install ansible-core ansible-lint in a throwaway venv)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " but CI=true: .ci/run must install it")
        pytest.skip(msg)
    return found


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(cmd, cwd=ANSIBLE, capture_output=True, text=True, timeout=300, env=env)


def test_playbooks_pass_syntax_check() -> None:
    proc = run([tool("ansible-playbook"), "-i", "inventory.example.ini", "--syntax-check",
                *PLAYBOOKS])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_playbooks_pass_ansible_lint() -> None:
    proc = run([tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor",
                *PLAYBOOKS])
    assert proc.returncode == 0, proc.stdout + proc.stderr
