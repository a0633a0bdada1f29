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
    ({"market": "binance"},
     "setting 'market': 'binance' is not allowed; allowed: 'sim', 'replay' or 'kraken'"),
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


NON_DEFAULT = {
    "market": "kraken", "execution": "kraken", "allow_live_orders": True,
    "symbols": ["ETH/USD", "BTC/USD"], "starting_cash": 2500.5,
    "sim": {"seed": 7}, "replay": {"data": ["/x/y.csv", "z"]},
    "kraken": {"rest_url": "http://127.0.0.1:1", "ws_url": "ws://127.0.0.1:2",
               "ws_auth_url": "ws://127.0.0.1:3", "timeout_s": 3.5, "max_retries": 0,
               "public_calls_per_s": 2.0, "ws_silence_s": 12.0},
    "history": {"days_5m": 2, "days_1h": 3, "days_1d": 4, "retention_days_5m": 91,
                "retention_days_1h": 1100},
    "sandbox": {"allow_weak_isolation": True, "call_timeout_s": 4.0, "validation_budget_s": 60.0},
    "risk": {"max_trade_pct": 0.05, "max_position_pct": 0.2, "max_open_positions": 3,
             "max_exposure_pct": 0.7, "daily_loss_halt_pct": 0.05, "drawdown_halt_pct": 0.3,
             "rollback_daily_drop_pct": 0.1, "rollback_consecutive_losses": 6,
             "probation_half_pct": 0.04, "probation_quarter_pct": 0.08,
             "probation_window_hours": 12.0, "cooldown_minutes": 30.0, "price_buffer_pct": 0.02},
    "backup": {"dir": "/srv/snapshots", "retention_days": 30},
    "notify": {"channels": ["telegram", "webhook"], "webhook_url": "https://example.test/hook",
               "routing": {"trade_opened": ["log"], "kill": ["log", "webhook"]},
               "rate_limit_per_min": 5, "digest_threshold": 9, "timeout_s": 2.0, "retries": 1,
               "budget_s": 8.0, "max_attempts": 3, "max_age_h": 6.0},
    "telegram": {"chat_id": -1001, "allowed_user_ids": [1, 2], "api_url": "http://127.0.0.1:4",
                 "poll_timeout_s": 5, "timeout_s": 3.0},
    "evolution": {"schedule_time": "03:15", "timezone": "Europe/Paris", "history_days": 20,
                  "sweep_size": 10, "family_sweep_size": 4, "train_fraction": 0.6,
                  "margin": 0.01, "min_dsr": 0.9, "max_pbo": 0.4, "min_trades": 7,
                  "max_candidates": 2, "paper_days_tier1": 0.5, "paper_days_tier2": 3,
                  "paper_days_tier3": 5, "stale_days": 4, "review_days": 10},
    "reports": {"schedule_time": "08:30", "timezone": "Europe/Paris"},
    "ui": {"portfolio_heartbeat_minutes": 5, "portfolio_change_bps": 25,
           "portfolio_chart_minutes": 30},
    "advisor": {"kind": "offline", "analyst_model": "m-a", "coder_model": "m-c",
                "reviewer_model": "m-r", "panel": 3, "daily_token_budget": 5000,
                "max_input_tokens_per_cycle": 2000, "max_output_tokens": 512,
                "max_reply_retries": 1, "max_repairs": 1, "base_url": "http://127.0.0.1:5",
                "timeout_s": 5.0, "max_retries": 0,
                "prices": {"m-a": [1.0, 2.0, 3.0, 4.0], "m-c": [0.0, 0.0, 0.0, 0.0],
                           "m-r": [1.5, 2.5, 3.5, 0.5]}},
}


def _leaves(model: BaseModel, path: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out |= _leaves(value, f"{path}{name}.")
        else:
            out[f"{path}{name}"] = value
    return out


def test_the_non_default_fixture_changes_every_setting():
    """So the round trip below covers every key of every section (a new key must join it)."""
    got, default = _leaves(parse_settings(NON_DEFAULT)), _leaves(Settings())
    assert got.keys() == default.keys()
    assert [k for k in got if got[k] == default[k]] == []


@pytest.mark.parametrize("data", [{}, NON_DEFAULT], ids=["defaults", "non-default"])
def test_rendered_config_round_trips_every_section(tmp_path, data):
    s = parse_settings(data)
    text = render(s)
    assert parse_settings(tomllib.loads(text)) == s
    sections = [f"[{name}]" for name, f in Settings.model_fields.items()
                if isinstance(f.default, BaseModel)]
    assert {"[backup]", "[sandbox]", "[risk]", "[notify]", "[telegram]"} <= set(sections)
    assert all(line in text.splitlines() for line in sections)
    assert max(len(line) for line in text.splitlines()) <= 100


def test_rendered_comments_come_from_the_field_descriptions():
    text = render(Settings())
    lines = text.splitlines()
    for path, info in _fields(Settings):
        assert info.description, f"{path} has no Field(description=...)"
        first_words = " ".join(info.description.split()[:4])
        assert any(first_words in line for line in lines if line.startswith("#")), path
    prose = " ".join(line[2:] for line in lines if line.startswith("# "))
    assert '(one of "sim", "replay", "kraken")' in prose  # a Literal's values
    assert "(> 0, ≤ 120)" in prose  # kraken.timeout_s bounds
    assert "(true or false)" in prose  # a strict bool
    assert '# kind = "offline"  (unset)' in text  # None is written commented out


def _fields(model: type[BaseModel], path: str = ""):  # noqa: ANN202 - (dotted name, FieldInfo)
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from _fields(sub, f"{path}{name}.")
        else:
            yield f"{path}{name}", info


def test_secrets_are_never_rendered(monkeypatch):
    monkeypatch.setenv("KRAKEN_API_SECRET", "very-secret-value")
    text = render(parse_settings(NON_DEFAULT))
    assert "very-secret-value" not in text
    keys = {line.split("=", 1)[0].strip() for line in text.splitlines()
            if "=" in line and not line.startswith("#")}
    names = set(Secrets.model_fields)
    assert not keys & (names | {n.upper() for n in names})


def test_a_secret_field_is_refused():
    from pydantic import SecretStr

    from trading_brain.app.home import config_file

    class WithSecret(BaseModel):
        token: SecretStr = SecretStr("x")

    with pytest.raises(ValueError, match="secret"):
        config_file._section(WithSecret(), "")


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
