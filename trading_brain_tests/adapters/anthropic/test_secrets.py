"""Secrets never enter a prompt, a stored thought, a log or the warehouse: canary values in every
secret variable (environment and ``.env``), a full advisor cycle (panel, a rejected reply, the
coder, the reviewer, an API failure), then every text column, the warehouse file, the captured
logs (DEBUG, every logger, the SDK's included) and every request body the fake received are
searched for them."""

from __future__ import annotations

import json
import logging

import pytest

from trading_brain.adapters.anthropic.advisor import AnthropicAdvisor
from trading_brain.adapters.anthropic.wire import ReviewRequest
from trading_brain.errors import AdvisorOutputRejected
from trading_brain.settings import Secrets
from trading_brain_tests.adapters.anthropic import helpers as h
from trading_brain_tests.fakes.anthropic_server import FakeAnthropic, ok, overloaded, text

CANARIES = {"ANTHROPIC_API_KEY": "sk-ant-CANARY-env-7f3a9c",
            "KRAKEN_API_KEY": "CANARY-kraken-key-51d0",
            "KRAKEN_API_SECRET": "CANARY-kraken-secret-88e2",
            "TELEGRAM_BOT_TOKEN": "CANARY-telegram-token-0b4f"}
DOTENV = {"KRAKEN_API_SECRET": CANARIES["KRAKEN_API_SECRET"],
          "TELEGRAM_BOT_TOKEN": CANARIES["TELEGRAM_BOT_TOKEN"]}


def text_columns(store) -> list[str]:
    """Every value of every VARCHAR/JSON column of the warehouse."""
    out: list[str] = []
    with store.connect() as con:
        cols = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                           "WHERE data_type IN ('VARCHAR', 'JSON')").fetchall()
        for table, col in cols:
            out += [str(v) for (v,) in con.execute(
                f'SELECT CAST("{col}" AS VARCHAR) FROM "{table}" WHERE "{col}" IS NOT NULL'
            ).fetchall()]
        con.execute("CHECKPOINT")
    return out


def test_no_secret_leaves_the_process(tmp_path, store, monkeypatch, caplog):
    for name in ("KRAKEN_API_SECRET", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("ANTHROPIC_API_KEY", "KRAKEN_API_KEY"):
        monkeypatch.setenv(name, CANARIES[name])
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
    (tmp_path / ".env").chmod(0o600)
    secrets = Secrets.load(tmp_path)
    assert secrets.telegram_bot_token is not None  # the .env canaries were read
    caplog.set_level(logging.DEBUG)
    tier2 = h.decision("create_candidate", tier=2, code_brief="Use the previous bar's EMAs.")
    with FakeAnthropic(api_key=CANARIES["ANTHROPIC_API_KEY"]) as fa:
        adv = AnthropicAdvisor.open(h.settings(base_url=fa.url, panel=3, max_retries=1),
                                    secrets, store)
        fa.script(ok(tier2), text("not json"), ok(tier2), ok(h.decision()),
                  ok(h.code(h.v3_source())))
        source = adv.decide(h.ctx()).source or ""
        assert source == h.v3_source()
        fa.script(ok(h.review("reject", "look-ahead in the previous-bar line")))
        r = adv.review(ReviewRequest("ema_cross@3", source, "ema_cross@1", h.EMA_SOURCE,
                                     {"gates": []}, tier2["code_brief"]))
        assert r.verdict == "reject"
        fa.script(overloaded(0.01), overloaded(0.01))
        with pytest.raises(AdvisorOutputRejected) as failure:
            adv.review(ReviewRequest("ema_cross@3", source, "ema_cross@1", h.EMA_SOURCE))
        bodies = json.dumps(fa.requests)
    stored = text_columns(store)
    assert any("previous bar" in s for s in stored)  # the thoughts are there...
    raw = store.path.read_bytes()
    for name, value in CANARIES.items():  # ...and no secret anywhere
        assert value not in bodies, f"{name} in a request body"
        assert not [s for s in stored if value in s], f"{name} in the warehouse"
        assert value.encode() not in raw, f"{name} in the warehouse file"
        assert value not in caplog.text, f"{name} in the logs"
        assert value not in str(failure.value) and value not in repr(secrets)
    assert "Retrying request" in caplog.text  # the SDK's own log was captured
