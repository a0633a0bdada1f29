"""The SDK client from settings and secrets: ``base_url`` setting or the SDK's own
``ANTHROPIC_BASE_URL``; the model check at start-up; one-line errors; the ``[advisor]`` kind."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from trading_brain.adapters.anthropic.advisor import AnthropicAdvisor
from trading_brain.adapters.anthropic.client import make_client
from trading_brain.domain.advisor import AdvisorSettings, resolve_kind
from trading_brain.errors import ConfigError, OperationalError
from trading_brain.settings import Secrets, parse_settings
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, ok

SECRETS = Secrets(anthropic_api_key=SecretStr(h.KEY))


@pytest.fixture
def fa():
    with FakeAnthropic(api_key=h.KEY) as server:
        yield server


def test_the_base_url_setting_is_used(fa):
    client = make_client(AdvisorSettings(base_url=fa.url, timeout_s=3.0, max_retries=4),
                         SECRETS)
    assert str(client.base_url).rstrip("/") == fa.url
    assert (client.timeout, client.max_retries) == (3.0, 4)


def test_the_sdks_own_base_url_variable_is_honoured(fa, store, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fa.url)
    fa.script(ok(h.decision()))
    adv = AnthropicAdvisor.open(h.settings(), SECRETS, store)
    assert adv.decide(h.ctx()).action == "no_change"
    assert len(fa.calls()) == 1


def test_without_a_key_the_error_is_one_line():
    with pytest.raises(ConfigError, match=r"^advisor kind anthropic needs ANTHROPIC_API_KEY"):
        make_client(AdvisorSettings(), Secrets())


def test_an_unknown_model_is_named_at_start_up(fa, store):
    s = h.settings(base_url=fa.url, analyst_model="claude-nope",
                   prices={"claude-nope": [1, 1, 1, 1], "claude-sonnet-4-6": [3, 15, 3.75, .3]})
    with pytest.raises(ConfigError) as e:
        AnthropicAdvisor.open(s, SECRETS, store)
    assert str(e.value) == ("unknown anthropic model 'claude-nope' in [advisor]; the API lists: "
                            "claude-haiku-4-5, claude-opus-4-6, claude-sonnet-4-6")
    assert fa.calls() == []


def test_a_refused_key_is_an_operational_error(fa, store):
    bad = Secrets(anthropic_api_key=SecretStr("sk-ant-wrong"))
    with pytest.raises(OperationalError, match="the API key was refused") as e:
        AnthropicAdvisor.open(h.settings(base_url=fa.url), bad, store)
    assert "sk-ant-wrong" not in str(e.value)


def test_advisor_kind_and_settings():
    assert resolve_kind(AdvisorSettings(), anthropic_key_set=True) == "anthropic"
    assert resolve_kind(AdvisorSettings(), anthropic_key_set=False) == "offline"
    assert resolve_kind(AdvisorSettings(kind="offline"), anthropic_key_set=True) == "offline"
    assert parse_settings({"advisor": "anthropic"}).advisor.kind == "anthropic"  # older files
    with pytest.raises(ConfigError, match="coder_model 'm-x' has no row in prices"):
        parse_settings({"advisor": {"coder_model": "m-x"}})
    with pytest.raises(ConfigError, match="advisor.panel"):
        parse_settings({"advisor": {"panel": 2}})
    with pytest.raises(ConfigError, match="advisor.prices"):
        parse_settings({"advisor": {"prices": {"claude-sonnet-4-6": [1, 2, 3]}}})


def test_the_anthropic_advisor_is_a_ports_advisor(fa, store):
    from trading_brain.ports import Advisor

    adv: Advisor = h.advisor(fa, store)
    assert isinstance(adv, Advisor) and adv.name == "anthropic"
