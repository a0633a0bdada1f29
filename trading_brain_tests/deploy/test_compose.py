"""The deployment files: compose parses and references only files that exist, the hardening
rules hold, the image's entrypoints run, the lock pins every dependency with hashes, and
deploy/check-env.sh rejects bad env files with one line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from trading_brain.app.serve import DAGSTER_YAML

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
APP = ("code", "webserver", "daemon")
BIN = Path(sys.executable).parent
GOOD_HASH = "$2a$14$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_references_only_files_that_exist(compose: dict) -> None:
    ignored = (REPO / ".gitignore").read_text().split()
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build:
            ctx = (DEPLOY / build["context"]).resolve()
            assert (ctx / build.get("dockerfile", "Dockerfile")).is_file(), name
        for env in svc.get("env_file", []):
            path = DEPLOY / (env["path"] if isinstance(env, dict) else env)
            # the real env file is never committed: it must be ignored and have an example
            assert path.is_file() or (path.name in ignored and (DEPLOY / "env.example").is_file())
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith((".", "/")):
                assert (DEPLOY / src).exists(), (name, src)
            else:
                assert src in compose["volumes"], (name, src)
    for line in (REPO / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        if line.startswith("COPY"):
            for src in line.split()[1:-1]:
                assert (REPO / src).exists(), src


def test_hardening_rules(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon", "caddy"}
    for name, svc in services.items():
        assert svc.get("read_only") is True, name
        assert any("no-new-privileges:true" in o for o in svc["security_opt"]), name
        assert svc["deploy"]["resources"]["limits"]["memory"], name
        if name != "caddy":
            assert "ports" not in svc, f"{name} publishes a port: only caddy may"
    assert compose["networks"]["backend"]["internal"] is True
    for role in APP:
        assert services[role]["command"] == [role]
        assert services[role]["environment"]["TB_ROLE"] == role
        assert services[role]["cap_drop"] == ["ALL"]
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "basic_auth" in caddy and "{$TB_AUTH_HASH}" in caddy and "{$TB_DOMAIN::80}" in caddy
    assert "reverse_proxy webserver:3000" in caddy


def test_postgres_instance_config_matches_the_up_instance() -> None:
    pg = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text())
    up = yaml.safe_load(DAGSTER_YAML)
    assert {k: v for k, v in pg.items() if k not in ("storage", "run_launcher")} == up
    assert pg["concurrency"]["pools"]["default_limit"] == 1  # `warehouse` has one slot
    db = pg["storage"]["postgres"]["postgres_db"]
    assert db.pop("scheme") == "postgresql+psycopg2"  # see the comment in the yaml
    assert all(set(v) == {"env"} for v in db.values()), "credentials come from the env only"
    ws = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert ws["load_from"][0]["grpc_server"]["location_name"] == "trading_brain"


@pytest.mark.parametrize("cmd", [
    ["dagster-webserver", "--help"], ["dagster-daemon", "run", "--help"],
    ["dagster", "code-server", "start", "--help"], ["trading-brain", "--help"],
    ["dagster", "api", "grpc-health-check", "--help"], ["dagster-daemon", "liveness-check",
                                                        "--help"]])
def test_image_entrypoint_commands_run(cmd: list[str]) -> None:
    text = (DEPLOY / "entrypoint.sh").read_text() + (DEPLOY / "healthcheck.sh").read_text()
    assert " ".join(cmd[:-1]) in text.replace("  ", " ")
    proc = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "Usage" in proc.stdout, proc.stderr


def test_preflight_names_a_missing_secret(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(DEPLOY / "preflight.py"), "--wait", "0"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "DAGSTER_PG_HOST": "127.0.0.1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: missing setting(s) DAGSTER_PG_PORT, DAGSTER_PG_USER, DAGSTER_PG_PASSWORD, "
        "DAGSTER_PG_DB, TRADING_BRAIN_HOME; copy deploy/env.example to deploy/.env"]


def test_lock_pins_every_dependency_with_hashes() -> None:
    text = (REPO / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.M))
    entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 4)[-1])
    assert all("--hash=sha256:" in e for e in entries if "==" in e)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["k8s"]  # image extras
    for dep in deps:
        name, version = re.match(r"([A-Za-z0-9_.-]+)(?:\[.*\])?==(\S+)", dep).groups()
        key = next((k for k in pins if k.lower().replace("_", "-") == name.lower()), None)
        assert key is not None and pins[key] == version, f"{dep} is not locked as pinned"


def _check_env(tmp_path: Path, body: str, mode: int = 0o600) -> subprocess.CompletedProcess:
    f = tmp_path / "env"
    f.write_text(body)
    f.chmod(mode)
    return subprocess.run(["sh", str(DEPLOY / "check-env.sh"), str(f)], capture_output=True,
                          text=True, timeout=30)


GOOD = ("DAGSTER_PG_USER=dagster\nDAGSTER_PG_DB=dagster\nDAGSTER_PG_PASSWORD=0123456789abcdefXY\n"
        f"TB_AUTH_USER=trader\nTB_AUTH_HASH='{GOOD_HASH}'\nTB_DOMAIN=\n")


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
@pytest.mark.parametrize("body,mode,why", [
    (GOOD, 0o644, "run: chmod 600"),
    ((DEPLOY / "env.example").read_text(), 0o600, "still the placeholder"),
    (GOOD.replace("DAGSTER_PG_PASSWORD=0123456789abcdefXY", "DAGSTER_PG_PASSWORD=short"), 0o600,
     "shorter than 16"),
    (GOOD.replace(GOOD_HASH, "plaintext-password"), 0o600, "not a bcrypt hash"),
    (GOOD.replace("TB_DOMAIN=", "TB_DOMAIN=not a domain"), 0o600, "is not a domain name"),
    (GOOD + "KRAKEN_API_KEY=abc\n", 0o600, "KRAKEN_API_SECRET is empty"),
    (GOOD + "oops this is not an assignment\n", 0o600, "not KEY=VALUE"),
    (GOOD.replace("TB_AUTH_USER=trader\n", ""), 0o600, "TB_AUTH_USER is missing"),
])
def test_check_env_rejects_bad_env_files(tmp_path: Path, body: str, mode: int, why: str) -> None:
    proc = _check_env(tmp_path, body, mode)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and why in lines[0], proc.stderr
    assert "0123456789abcdefXY" not in proc.stderr  # never echoes a secret


def test_check_env_accepts_a_good_file(tmp_path: Path) -> None:
    proc = _check_env(tmp_path, GOOD + "TB_DOMAIN=trading.example.org\n")
    assert proc.returncode == 0 and proc.stdout.startswith("ok: "), proc.stderr


def test_preflight_sandbox_check_passes_where_the_sandbox_layers_work() -> None:
    """The code role's start check boots ema_cross@1 in the sandbox: None (no problem) on a
    kernel with seccomp and Landlock, as the sandbox tests require of this machine."""
    import runpy

    preflight = runpy.run_path(str(DEPLOY / "preflight.py"))
    assert preflight["check_sandbox"]() is None
