"""Settings: strict validation with one-line errors naming the key; secrets never leak."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from trading_brain.adapters.sim.universe import KNOWN_SYMBOLS
from trading_brain.app.home.config_file import render
from trading_brain.domain.instruments import DEFAULT_SYMBOLS
from trading_brain.errors import ConfigError
from trading_brain.settings import (
    MAX_SYMBOLS,
    Home,
    Secrets,
    Settings,
    load_settings,
    parse_settings,
)


@pytest.mark.parametrize(("data", "message"), [
    ({"market": "binance"}, "setting 'market': 'binance' is not allowed; allowed: 'sim', 'replay' or 'kraken'"),
    ({"kraken": {"rest_urll": "x"}}, "unknown setting 'kraken.rest_urll'"),  # typo in a section
    ({"bogus": 1}, "unknown setting 'bogus'"),
    ({"symbols": ["BTCUSD"]}, "invalid symbol 'BTCUSD'"),
    ({"symbols": ["BTC/USD", "btc/usd"]}, "symbols must be unique"),
    ({"history": {"retention_days_5m": 30}}, "setting 'history.retention_days_5m'"),  # ≥ 90 days
    ({"starting_cash": -5}, "setting 'starting_cash'"),
])
def test_bad_settings_name_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        parse_settings(data)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        s.market = "kraken"  # type: ignore[misc]


def test_rendered_config_round_trips_and_is_commented(tmp_path):
    s = parse_settings({"market": "replay", "replay": {"data": ["/x/y.csv"]},
                        "symbols": ["eth-usd"], "sim": {"seed": 7}})
    text = render(s)
    assert text.count("#") > 10
    assert parse_settings(tomllib.loads(text)) == s
    home = Home(tmp_path)
    home.config_file.write_text(text)
    assert load_settings(home) == s


def test_broken_toml_is_one_line_error(tmp_path):
    home = Home(tmp_path)
    home.config_file.write_text("market = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(home)


def test_secrets_from_env_and_dotenv_are_never_printed(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("KRAKEN_API_KEY=from-dotenv\nANTHROPIC_API_KEY=sk-dotenv\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env-wins")
    monkeypatch.delenv("KRAKEN_API_SECRET", raising=False)
    s = Secrets.load(tmp_path)
    assert s.kraken_api_key.get_secret_value() == "from-dotenv"
    assert s.anthropic_api_key.get_secret_value() == "sk-env-wins"
    assert s.kraken_api_secret is None
    for text in (repr(s), str(s), s.model_dump_json()):
        assert "from-dotenv" not in text and "sk-env-wins" not in text


def test_home_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADING_BRAIN_HOME", str(tmp_path / "h"))
    assert Home().root == (tmp_path / "h").resolve()
    assert Home(tmp_path).warehouse == tmp_path.resolve() / "var" / "warehouse.duckdb"
    assert Home(tmp_path).dagster_home == tmp_path.resolve() / "var" / "dagster"


# ---- issue 9 part 4: strict switches, finite bounded numbers, a capped known symbol list ----

SWITCHES = [("allow_live_orders",), ("sandbox", "allow_weak_isolation")]


def _nest(path: tuple[str, ...], value: object) -> dict:
    return {path[0]: value} if len(path) == 1 else {path[0]: _nest(path[1:], value)}


@pytest.mark.parametrize("path", SWITCHES)
@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "on", 1.0])
def test_switches_take_a_toml_boolean_and_nothing_else(path, value):
    with pytest.raises(ConfigError) as e:
        parse_settings(_nest(path, value))
    assert f"setting {'.'.join(path)!r}: must be true or false (a TOML boolean)" in str(e.value)
    assert parse_settings(_nest(path, True)) != parse_settings(_nest(path, False))


@pytest.mark.parametrize("text", ['allow_live_orders = "yes"', "allow_live_orders = 1"])
def test_live_orders_stay_off_unless_the_file_says_true(tmp_path, text):
    home = Home(tmp_path)
    home.config_file.write_text(text + "\n")
    with pytest.raises(ConfigError, match="must be true or false"):
        load_settings(home)
    home.config_file.write_text("allow_live_orders = true\n")
    assert load_settings(home).allow_live_orders is True


def _numeric_fields(model: type, prefix: tuple[str, ...] = ()):
    """(path, annotation) of every int/float field of the settings tree."""
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _numeric_fields(ann, (*prefix, name))
        elif ann in (int, float):
            yield (*prefix, name), ann


NUMERIC = list(_numeric_fields(Settings))


def test_the_walk_finds_every_section():
    sections = {p[0] for p, _ in NUMERIC if len(p) > 1}
    assert {"sim", "kraken", "history", "sandbox", "risk"} <= sections
    assert ("starting_cash",) in dict(NUMERIC)


@pytest.mark.parametrize(("path", "ann"), NUMERIC, ids=[".".join(p) for p, _ in NUMERIC])
def test_every_number_is_finite_and_bounded(path, ann):
    key = ".".join(path)
    bad = [float("inf"), float("-inf"), float("nan"), 1e19] if ann is float else [10**19, -(10**19)]
    for value in bad:
        with pytest.raises(ConfigError) as e:
            parse_settings(_nest(path, value))
        assert f"setting {key!r}" in str(e.value), value


def test_infinite_cash_in_the_file_is_refused(tmp_path):
    home = Home(tmp_path)
    home.config_file.write_text("starting_cash = inf\n")
    with pytest.raises(ConfigError, match="setting 'starting_cash': must be a finite number"):
        load_settings(home)
    with pytest.raises(ConfigError, match="starting_cash"):
        parse_settings({"starting_cash": 1e13})  # bounded above too


def test_symbol_list_is_capped_and_duplicates_named():
    many = [f"S{i}/USD" for i in range(MAX_SYMBOLS)]
    assert len(parse_settings({"market": "kraken", "symbols": many}).symbols) == MAX_SYMBOLS
    for n in (MAX_SYMBOLS + 1, 20_000):
        with pytest.raises(ConfigError, match=f"at most {MAX_SYMBOLS} symbols, got {n}"):
            parse_settings({"market": "kraken", "symbols": [f"S{i}/USD" for i in range(n)]})
    with pytest.raises(ConfigError, match="repeated: BTC/USD, ETH/USD"):
        parse_settings({"symbols": ["BTC/USD", "eth/usd", "btc-usd", "ETH/USD", "SOL/USD"]})


def test_the_sim_market_refuses_symbols_it_does_not_know():
    with pytest.raises(ConfigError) as e:
        parse_settings({"symbols": ["BTC/USD", "FOOBARZZ/USD", "NOPE/EUR"]})
    msg = str(e.value)
    assert msg.startswith("setting 'symbols': unknown to the sim market: FOOBARZZ/USD, NOPE/EUR")
    assert "known: BTC/USD" in msg and "\n" not in msg
    assert parse_settings({"symbols": list(KNOWN_SYMBOLS)}).symbols == list(KNOWN_SYMBOLS)
    assert set(DEFAULT_SYMBOLS) <= set(KNOWN_SYMBOLS) and 20 <= len(KNOWN_SYMBOLS) <= 50
    # other markets define their own universe (the venue's AssetPairs, the replayed files)
    assert parse_settings({"market": "kraken", "symbols": ["FOOBARZZ/USD"]}).symbols


def test_readable_dotenv_is_used_with_one_warning_naming_the_fix(tmp_path, capsys, caplog):
    env = tmp_path / ".env"
    env.write_text("KRAKEN_API_KEY=k\n")
    env.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="trading_brain.settings"):
        assert Secrets.load(tmp_path).kraken_api_key is not None  # still used
        Secrets.load(tmp_path)  # once per file and process
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("warning: ")
    assert f"chmod 600 {env}" in err[0] and "readable by group or others" in err[0]
    assert [r.getMessage() for r in caplog.records if "chmod 600" in r.getMessage()]


def test_private_dotenv_loads_silently(tmp_path, capsys):
    env = tmp_path / ".env"
    env.write_text("KRAKEN_API_KEY=k\n")
    env.chmod(0o600)
    assert Secrets.load(tmp_path).kraken_api_key is not None
    assert capsys.readouterr().err == ""


# ---- the CLI: a bad config is one line `error: …`, exit 2, for init, status and simulate ----

EXE = Path(sys.executable).with_name("trading-brain")


def _tb(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRADING_BRAIN_HOME"}
    return subprocess.run([str(EXE), "--home", str(home), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess, *texts: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and all(t in lines[0] for t in texts), proc.stderr


BAD_CONFIGS = [
    ('allow_live_orders = "yes"\n', "'allow_live_orders': must be true or false"),
    ("allow_live_orders = 1\n", "'allow_live_orders': must be true or false"),
    ("starting_cash = inf\n", "'starting_cash': must be a finite number"),
    ('symbols = ["FOOBARZZ/USD"]\n', "unknown to the sim market: FOOBARZZ/USD"),
    ("symbols = [" + ", ".join(f'"S{i}/USD"' for i in range(20_000)) + "]\n",
     f"at most {MAX_SYMBOLS} symbols"),
    ("[sandbox]\nallow_weak_isolation = 1\n", "'sandbox.allow_weak_isolation'"),
]


@pytest.fixture(scope="module")
def initialised_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("h")
    (home / "trading_brain.toml").write_text('symbols = ["BTC/USD"]\n')
    proc = _tb(home, "init", "--no-bootstrap", "--strategy", "none")
    assert proc.returncode == 0, proc.stderr
    return home


@pytest.mark.parametrize(("toml", "text"), BAD_CONFIGS, ids=[t for _, t in BAD_CONFIGS])
def test_init_status_simulate_refuse_a_bad_config_in_one_line(tmp_path, initialised_home,
                                                                toml, text):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "trading_brain.toml").write_text(toml)
    _one_line_error(_tb(fresh, "init", "--no-bootstrap"), text)
    assert not (fresh / "var").exists()
    good = (initialised_home / "trading_brain.toml").read_text()
    try:
        (initialised_home / "trading_brain.toml").write_text(toml)
        _one_line_error(_tb(initialised_home, "status"), text)
        _one_line_error(_tb(initialised_home, "simulate", "--days", "1"), text)
    finally:
        (initialised_home / "trading_brain.toml").write_text(good)


def test_init_and_simulate_refuse_unknown_sim_symbols_given_on_the_command_line(
        tmp_path, initialised_home):
    _one_line_error(_tb(tmp_path / "x", "init", "--symbols", "BTC/USD,FOOBARZZ/USD"),
                    "unknown to the sim market: FOOBARZZ/USD")
    _one_line_error(_tb(initialised_home, "simulate", "--days", "1", "--symbols", "FOOBARZZ/USD"),
                    "unknown to the sim market: FOOBARZZ/USD")
