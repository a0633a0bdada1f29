"""scan_signals' decisions table: one row per slot and symbol with the action taken and why."""

from __future__ import annotations

from trading_brain.defs.trading.assets import decisions_md
from trading_brain.engine.scan import ScanResult


def _row(symbol: str, action: str, decision: str | None = None, reason: str | None = None):
    return {"slot": "active", "symbol": symbol, "action": action, "risk_decision": decision,
            "risk_reason": reason}


def test_every_outcome_has_its_reason():
    result = ScanResult(
        scan={"details": {"rejected": [{"slot": "active", "symbol": "ETH/USD",
                                         "reason": "max_open_positions",
                                         "message": "3 open | limit 3"}]}},
        signals=[_row("BTC/USD", "enter", "approved", "ok"),
                 _row("ETH/USD", "enter", "rejected", "max_open_positions"),
                 _row("SOL/USD", "hold"),
                 _row("XRP/USD", "hold", None, "stale_data: newest bar none, expected 10:00"),
                 _row("ADA/USD", "exit", None, "noop")])
    lines = decisions_md(result).splitlines()
    assert lines[0] == "| slot | symbol | signal | action taken | reason |"
    assert lines[2:] == [
        "| active | BTC/USD | enter | intent enter | risk approved |",
        "| active | ETH/USD | enter | rejected | risk: max_open_positions (3 open / limit 3) |",
        "| active | SOL/USD | hold | none | no signal |",
        "| active | XRP/USD | hold | none | stale_data: newest bar none, expected 10:00 |",
        "| active | ADA/USD | exit | none | exit signal without a position |"]


def test_an_empty_scan_says_so():
    assert decisions_md(ScanResult(scan={"details": {"rejected": []}})) == "no symbols scanned"
