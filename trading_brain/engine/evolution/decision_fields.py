"""Field types and validators of the advisor decision schema (see ``decision``), pure.

``METRICS`` is the closed set of metric names a prediction may use; each name is a column the
truth benchmarks compute, in the unit written beside it (the benchmarks must follow these units).
Text fields are kept as data; only what storage cannot hold (NUL, lone surrogates) is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, StrictBool, StrictFloat, StrictInt
from pydantic import StringConstraints as Str

from trading_brain.domain.risk import RiskLimits

ACTIONS = ("no_change", "create_candidate", "promote_candidate", "cancel_candidate",
           "update_market_analysis", "update_trade_analysis")
METRICS: dict[str, str] = {
    "trades": "closed round trips in the window (count)",
    "win_rate": "winning closed trades / closed trades, a fraction in [0, 1]",
    "expectancy": "net P&L per closed trade, quote currency",
    "net_pnl": "P&L after fees, quote currency",
    "gross_pnl": "P&L before fees, quote currency",
    "fees_paid": "fees paid, quote currency",
    "fees_pct_of_gross": "fees as a percentage of gross profit (25 = 25 %)",
    "profit_factor": "gross profit of winners / gross loss of losers",
    "max_drawdown": "largest peak-to-trough equity drop, a fraction in [0, 1]",
    "sharpe": "annualised Sharpe of daily returns (√365)",
    "sortino": "annualised Sortino of daily returns (√365)",
}
MAX_REASONING, MAX_OBSERVATION, MAX_CLAIM = 4_000, 2_000, 500
MAX_PREDICTIONS, MAX_PARAMS, MAX_SOURCE = 5, 32, 100_000
MAX_DEADLINE_DAYS = 90
MAX_RAW_CHARS = 2 * MAX_SOURCE
MAX_PARAM_MAGNITUDE = 1e9
VERSION_REF = re.compile(r"^[a-z][a-z0-9_]{0,63}@[1-9][0-9]{0,5}$")
RISK_WORDS = ("risk", "limit", "max_", "halt", "kill", "order", "position", "shell", "drawdown",
               "exposure", "rollback", "probation", "cooldown")

Metric = Literal["trades", "win_rate", "expectancy", "net_pnl", "gross_pnl", "fees_paid",
                 "fees_pct_of_gross", "profit_factor", "max_drawdown", "sharpe", "sortino"]
Comparator = Literal[">", ">=", "<", "<="]
Action = Literal["no_change", "create_candidate", "promote_candidate", "cancel_candidate",
                 "update_market_analysis", "update_trade_analysis"]


def _storable(text: str) -> str:
    if "\x00" in text:
        raise ValueError("text contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("text is not valid Unicode (lone surrogate)") from e
    return text


def _nonblank(text: str) -> str:
    if not text.strip():
        raise ValueError("text must not be blank")
    return text


def _param_value(value: object) -> object:
    if isinstance(value, bool) or (isinstance(value, int | float) and not isinstance(value, str)
                                   and abs(value) <= MAX_PARAM_MAGNITUDE):
        return value
    raise ValueError(f"a parameter value must be a boolean or a finite number within "
                     f"±{MAX_PARAM_MAGNITUDE:g}, got {str(value)[:40]!r}")


def _param_name(name: str) -> str:
    if name in RiskLimits.model_fields:
        raise ValueError(f"{name!r} is a risk limit: the advisor cannot change risk limits")
    return name


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected 1, 2 or 3, not a boolean")
    return value


def _version_ref(ref: str) -> str:
    if not VERSION_REF.fullmatch(ref):
        raise ValueError(f"{ref[:80]!r} is not a version reference family@N")
    return ref


def _subject(ref: str) -> str:
    return ref if ref == "active" else _version_ref(ref)


Tier = Annotated[Literal[1, 2, 3], BeforeValidator(_not_bool)]
VersionRef = Annotated[str, AfterValidator(_version_ref)]
Subject = Annotated[str, AfterValidator(_subject)]
ParamName = Annotated[str, Str(pattern=r"^[a-z_][a-z0-9_]{0,63}$"), AfterValidator(_param_name)]
ParamValue = Annotated[StrictBool | StrictInt | StrictFloat, BeforeValidator(_param_value)]
Claim = Annotated[str, Str(min_length=1, max_length=MAX_CLAIM), AfterValidator(_storable),
                  AfterValidator(_nonblank)]
Reasoning = Annotated[str, Str(min_length=1, max_length=MAX_REASONING),
                      AfterValidator(_storable), AfterValidator(_nonblank)]
Observation = Annotated[str, Str(max_length=MAX_OBSERVATION), AfterValidator(_storable)]
SourceText = Annotated[str, Str(min_length=1, max_length=MAX_SOURCE), AfterValidator(_storable),
                       AfterValidator(_nonblank)]


def is_risk_key(key: str) -> bool:
    """Whether an unknown key reads like an attempt at risk limits, the risk shell or orders."""
    lowered = key.lower()
    return lowered in RiskLimits.model_fields or any(w in lowered for w in RISK_WORDS)


def parse_deadline(text: str) -> datetime:
    """ISO 8601 with a timezone, or a bare date meaning 00:00 UTC of that day."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"deadline {text[:40]!r} is not an ISO 8601 date or datetime") from e
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return when.replace(tzinfo=UTC)
    if when.tzinfo is None:
        raise ValueError("deadline needs a timezone (e.g. 2026-06-01T00:00:00Z) or use "
                         "deadline_days")
    return when
