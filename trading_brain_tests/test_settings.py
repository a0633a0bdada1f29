"""Settings: strict validation with one-line errors naming the key; secrets never leak."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import ValidationError

from trading_brain.config_file import render
from trading_brain.errors import ConfigError
from trading_brain.settings import Home, Secrets, Settings, load_settings, parse_settings


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
