"""Render a commented ``trading_brain.toml`` from validated Settings (written by `init`)."""

from __future__ import annotations

import tomli_w

from trading_brain.settings import MAX_SYMBOLS, Settings


def _v(value: object) -> str:
    return tomli_w.dumps({"x": value}).split("=", 1)[1].strip()


def render(s: Settings) -> str:
    """Return the TOML text; loading it back gives ``s`` (tested)."""
    k, h, sb = s.kraken, s.history, s.sandbox
    lines = [
        "# Trading Brain configuration (validated at every start; unknown keys are rejected).",
        "# Secrets never go here: set KRAKEN_API_KEY, KRAKEN_API_SECRET, ANTHROPIC_API_KEY,",
        "# TELEGRAM_BOT_TOKEN in the environment or in .env beside this file.",
        "",
        "# Where prices come from: sim (built-in offline market), replay (files), kraken.",
        f"market = {_v(s.market)}",
        "# Where orders go: paper (the fill model) or kraken (real money; needs the next line",
        "# too). Switches take a TOML boolean, true or false, nothing else (not \"yes\", not 1).",
        f"execution = {_v(s.execution)}",
        f"allow_live_orders = {_v(s.allow_live_orders)}",
        f"# Pairs to trade, BASE/QUOTE, at most {MAX_SYMBOLS}; with market = \"sim\", from its",
        "# known universe (9 majors, other real Kraken USD pairs); kraken checks its AssetPairs.",
        f"symbols = {_v(s.symbols)}",
        "# Paper starting capital in the quote currency (every number here must be finite).",
        f"starting_cash = {_v(s.starting_cash)}",
    ]
    if s.advisor is not None:
        lines.append(f"advisor = {_v(s.advisor)}")
    lines += [
        "",
        "[sim]",
        "# Same seed, same candles for every (symbol, open time), across restarts.",
        f"seed = {_v(s.sim.seed)}",
        "",
        "[replay]",
        "# Files or folders of OHLCV (CSV, CSV.gz, Parquet, Kraken OHLCVT export).",
        f"data = {_v(s.replay.data)}",
        "",
        "[kraken]",
        f"rest_url = {_v(k.rest_url)}",
        f"ws_url = {_v(k.ws_url)}",
        f"ws_auth_url = {_v(k.ws_auth_url)}",
        f"timeout_s = {_v(k.timeout_s)}",
        f"max_retries = {_v(k.max_retries)}",
        f"public_calls_per_s = {_v(k.public_calls_per_s)}",
        "# Fall back to REST when the WebSocket is silent this long.",
        f"ws_silence_s = {_v(k.ws_silence_s)}",
        "",
        "[history]",
        "# Days of history `init`/bootstrap_job backfill per timeframe, and 5m/1h retention.",
        f"days_5m = {_v(h.days_5m)}",
        f"days_1h = {_v(h.days_1h)}",
        f"days_1d = {_v(h.days_1d)}",
        f"retention_days_5m = {_v(h.retention_days_5m)}",
        f"retention_days_1h = {_v(h.retention_days_1h)}",
        "",
        "[sandbox]",
        "# true only on a developer kernel without seccomp/Landlock (weaker isolation).",
        f"allow_weak_isolation = {_v(sb.allow_weak_isolation)}",
        f"call_timeout_s = {_v(sb.call_timeout_s)}",
        "",
        "[risk]",
        "# The rigid risk shell (fractions of equity). No strategy or AI output can change these.",
        *(f"{name} = {_v(getattr(s.risk, name))}" for name in type(s.risk).model_fields),
        "",
    ]
    return "\n".join(lines)
