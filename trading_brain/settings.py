"""Settings: ``trading_brain.toml`` in the home, validated strictly; secrets from the environment.

Contract:
- ``Settings`` is frozen and rejects unknown keys; a validation error becomes one ``ConfigError``
  line naming the key (``kraken.rest_url``) and what is allowed.
- Every switch (``allow_live_orders``, ``sandbox.allow_weak_isolation``) is a strict bool: a TOML
  ``true``/``false`` and nothing else (``"yes"`` or ``1`` is refused: "must be true or false (a
  TOML boolean)"). Every number is finite (no ``inf``/``nan``) and bounded.
- ``symbols``: at most ``MAX_SYMBOLS`` (memory and time grow with the count), no duplicates;
  with ``market = "sim"`` each must be in the sim market's known universe
  (``adapters.sim.universe``), the unknown ones are named. Kraken symbols are checked against the
  venue's AssetPairs when history is fetched (``init``, ``bootstrap``); replay files define theirs.
- Secrets (``KRAKEN_API_KEY``, ``KRAKEN_API_SECRET``, ``ANTHROPIC_API_KEY``, ``TELEGRAM_BOT_TOKEN``)
  are read only from the process environment or ``<home>/.env`` into ``Secrets`` as ``SecretStr``;
  they are never written to the TOML file and never appear in ``repr``. A ``.env`` readable by
  group or others is still used, with a one-line warning on stderr and in the log naming the
  ``chmod 600`` that fixes it (once per file and process).
- ``Home`` resolves every path of an installation: ``--home`` > ``TRADING_BRAIN_HOME`` > CWD.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trading_brain.domain.advisor import AdvisorSettings
from trading_brain.domain.alerts import NotifySettings, TelegramSettings
from trading_brain.domain.instruments import DEFAULT_SYMBOLS, parse_symbol
from trading_brain.domain.risk import RiskSettings
from trading_brain.errors import ConfigError

CONFIG_FILE = "trading_brain.toml"
HOME_ENV = "TRADING_BRAIN_HOME"
MAX_SYMBOLS = 50  # every symbol costs candles, indicators and a strategy call per bar
MAX_STARTING_CASH = 1e12
log = logging.getLogger(__name__)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SimSettings(_Section):
    """The built-in simulated market."""

    seed: int = Field(default=42, ge=0, le=2**63 - 1,
                      description="same seed, same candles for (symbol, time)")


class ReplaySettings(_Section):
    """Candles replayed from files (CSV, CSV.gz, Parquet, Kraken OHLCVT export)."""

    data: list[str] = Field(default_factory=list, description="files or folders to replay")


class KrakenSettings(_Section):
    """Kraken endpoints and client behaviour; URLs are settings so tests point them at a fake."""

    rest_url: str = Field(default="https://api.kraken.com", description="REST API base URL")
    ws_url: str = Field(default="wss://ws.kraken.com/v2",
                        description="public WebSocket v2 URL (tickers, candles)")
    ws_auth_url: str = Field(default="wss://ws-auth.kraken.com/v2",
                             description="private WebSocket v2 URL (order executions)")
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="per HTTP request, seconds")
    max_retries: int = Field(default=4, ge=0, le=10,
                             description="retries of a failed idempotent REST call")
    public_calls_per_s: float = Field(default=1.0, gt=0, le=20,
                                      description="public REST calls per second (Kraken: ~1)")
    ws_silence_s: float = Field(default=30.0, gt=0, le=3600,
                                description="fall back to REST when the WebSocket is silent this "
                                            "long, seconds")


class HistorySettings(_Section):
    """How much history ``bootstrap_job`` backfills and how long 5m candles are kept."""

    days_5m: int = Field(default=30, ge=1, le=3650,
                         description="days of 5m candles `init`/bootstrap_job backfill")
    days_1h: int = Field(default=365, ge=1, le=3650,
                         description="days of 1h candles `init`/bootstrap_job backfill")
    days_1d: int = Field(default=1095, ge=1, le=36500,
                         description="days of 1d candles `init`/bootstrap_job backfill")
    retention_days_5m: int = Field(default=90, ge=90, le=36500,
                                   description="5m candles older than this are deleted")
    retention_days_1h: int = Field(default=1095, ge=1095, le=36500,
                                   description="1h candles older than this are deleted")


class SandboxSettings(_Section):
    """The strategy sandbox worker."""

    allow_weak_isolation: StrictBool = Field(
        default=False, description="run without seccomp/Landlock (developer kernels only)"
    )
    call_timeout_s: float = Field(default=10.0, gt=0, le=600,
                                  description="longest one strategy call may take, seconds")
    validation_budget_s: float = Field(
        default=120.0, gt=0, le=3600,
        description="total time for validating a version (boot, smoke, look-ahead, warm-up)",
    )


class BackupSettings(_Section):
    """Warehouse snapshots (``warehouse_backup``, ``trading-brain backup``)."""

    dir: str = Field(default="var/backups", description="snapshot folder (relative to the home)")
    retention_days: int = Field(default=14, ge=1, le=3650,
                                description="snapshots older than this are deleted (never the "
                                            "newest)")


class EvolutionSettings(_Section):
    """The nightly evolution cycle (``evolution_job``, ``trading-brain evolve``; DESIGN §8)."""

    schedule_time: str = Field(default="02:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                               description="local time (HH:MM) of the nightly cycle")
    timezone: str = Field(default="UTC", description="IANA time zone of schedule_time and of "
                                                     "the night a cycle belongs to")
    history_days: int = Field(default=30, ge=2, le=365,
                              description="days of 5m candles the search and the gates use")
    sweep_size: int = Field(default=24, ge=2, le=500,
                            description="parameter sets searched in the active family")
    family_sweep_size: int = Field(default=8, ge=1, le=200,
                                   description="parameter sets searched per other family")
    train_fraction: float = Field(default=0.7, ge=0.3, le=0.9,
                                  description="in-sample share of the walk-forward split")
    margin: float = Field(default=0.005, ge=0, le=1,
                          description="out-of-sample return edge over the incumbent a "
                                      "candidate must exceed (0.005 = 0.5 %)")
    min_dsr: float = Field(default=0.95, ge=0, le=1,
                           description="lowest deflated Sharpe ratio that passes")
    max_pbo: float = Field(default=0.5, ge=0, le=1,
                           description="highest probability of backtest over-fitting that "
                                       "passes")
    min_trades: int = Field(default=5, ge=0, le=100_000,
                            description="closed trades a candidate needs (backtest and paper "
                                        "test)")
    max_candidates: int = Field(default=3, ge=1, le=3, description="candidate slots")
    paper_days_tier1: float = Field(default=1, gt=0, le=90,
                                    description="shadow paper test days of a tweak")
    paper_days_tier2: float = Field(default=2, gt=0, le=90,
                                    description="shadow paper test days of a restructure")
    paper_days_tier3: float = Field(default=7, gt=0, le=90,
                                    description="shadow paper test days of an overhaul")
    stale_days: float = Field(default=7, gt=0, le=90,
                              description="a candidate without a paper-test slot this long is "
                                          "cancelled")
    review_days: int = Field(default=14, ge=1, le=365,
                             description="days after a promotion before it is graded")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as "
                             "Europe/Paris)") from None
        return v


class ReportSettings(_Section):
    """The daily report (``report_schedule``; ``trading-brain report``)."""

    schedule_time: str = Field(default="07:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                               description="local time (HH:MM) of the daily report (of the "
                                           "day before)")
    timezone: str = Field(default="UTC", description="IANA time zone of schedule_time")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return EvolutionSettings._zone(v)  # pyright: ignore[reportPrivateUsage] # same rule


class UiSettings(_Section):
    """What the Dagster UI shows of the executor (``executor_sensor``'s ``portfolio`` events)."""

    portfolio_heartbeat_minutes: float = Field(
        default=15, ge=1, le=1440, description="a portfolio event at least this often, even "
                                               "when nothing changed")
    portfolio_change_bps: float = Field(
        default=10, ge=0, le=10_000, description="equity move (basis points) that is a change "
                                                 "worth a portfolio event (cash or positions "
                                                 "changing always is)")
    portfolio_chart_minutes: float = Field(
        default=15, ge=1, le=1440, description="the portfolio's equity chart is rendered at "
                                               "most this often (reused in between)")


class Settings(_Section):
    """The whole validated configuration of one Trading Brain home."""

    market: Literal["sim", "replay", "kraken"] = Field(
        default="sim", description="where prices come from: sim (the built-in offline market), "
                                   "replay (files), kraken")
    execution: Literal["paper", "kraken"] = Field(
        default="paper", description="where orders go: paper (the fill model) or kraken (real "
                                     "money; needs allow_live_orders = true too)")
    allow_live_orders: StrictBool = Field(
        default=False, description="the second switch for real orders with execution = kraken")
    symbols: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SYMBOLS), min_length=1,
        description=f"pairs to trade, BASE/QUOTE, at most {MAX_SYMBOLS}; with market = \"sim\", "
                    "from its known universe (9 majors, other real Kraken USD pairs); kraken "
                    "checks its AssetPairs")
    starting_cash: float = Field(default=10_000.0, gt=0, le=MAX_STARTING_CASH,
                                 description="paper starting capital in the quote currency")
    sim: SimSettings = SimSettings()
    replay: ReplaySettings = ReplaySettings()
    kraken: KrakenSettings = KrakenSettings()
    history: HistorySettings = HistorySettings()
    sandbox: SandboxSettings = SandboxSettings()
    risk: RiskSettings = RiskSettings()
    backup: BackupSettings = BackupSettings()
    notify: NotifySettings = NotifySettings()  # [notify], domain/alerts.py
    telegram: TelegramSettings = TelegramSettings()  # [telegram], domain/alerts.py
    evolution: EvolutionSettings = EvolutionSettings()
    reports: ReportSettings = ReportSettings()
    ui: UiSettings = UiSettings()
    advisor: AdvisorSettings = AdvisorSettings()  # [advisor], domain/advisor.py

    @model_validator(mode="before")
    @classmethod
    def _advisor_kind(cls, data: object) -> object:
        """An older ``advisor = "offline"`` line means ``[advisor] kind = "offline"``."""
        if isinstance(data, dict) and isinstance(data.get("advisor"), str):
            return {**data, "advisor": {"kind": data["advisor"]}}
        return data

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if len(v) > MAX_SYMBOLS:
            raise ValueError(f"at most {MAX_SYMBOLS} symbols, got {len(v)}")
        out = [parse_symbol(s) for s in v]
        dupes = [s for s, n in Counter(out).items() if n > 1]
        if dupes:
            raise ValueError(f"symbols must be unique; repeated: {', '.join(dupes)}")
        if info.data.get("market") == "sim":
            from trading_brain.adapters.sim.universe import KNOWN_SYMBOLS, unknown

            bad = unknown(out)
            if bad:
                more = f" (+{len(bad) - 10} more)" if len(bad) > 10 else ""
                raise ValueError(
                    f"unknown to the sim market: {', '.join(bad[:10])}{more}; "
                    f"known: {', '.join(KNOWN_SYMBOLS)}"
                )
        return out


class Secrets(BaseModel):
    """Secrets from the environment or ``.env``; never persisted or printed."""

    model_config = ConfigDict(frozen=True)

    kraken_api_key: SecretStr | None = None
    kraken_api_secret: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    telegram_bot_token: SecretStr | None = None

    @classmethod
    def load(cls, home: Path | None = None) -> Secrets:
        """Read secrets from ``<home>/.env`` overlaid by the process environment."""
        env: dict[str, str | None] = {}
        if home is not None and (home / ".env").is_file():
            warn_if_readable(home / ".env")
            env.update(dotenv_values(home / ".env"))
        env.update(os.environ)
        return cls.model_validate({n: env.get(n.upper()) or None for n in cls.model_fields})


_warned: set[Path] = set()


def warn_if_readable(path: Path) -> bool:
    """Warn (stderr, one line, and the log) when ``path`` is readable by group or others;
    once per file and process. Returns whether it is."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return False
    resolved = path.resolve()
    if resolved not in _warned:
        _warned.add(resolved)
        msg = (f"{path} holds secrets but is readable by group or others "
               f"(mode {stat.S_IMODE(mode):03o}); fix it with: chmod 600 {path}")
        print(f"warning: {msg}", file=sys.stderr)
        if log.hasHandlers():  # without handlers, logging's last resort would print it twice
            log.warning(msg)
    return True


class Home:
    """Every path of one installation, rooted at one directory."""

    def __init__(self, root: Path | str | None = None) -> None:
        base = root if root is not None else os.environ.get(HOME_ENV) or os.getcwd()
        self.root = Path(base).expanduser().resolve()

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def warehouse(self) -> Path:
        return self.var / "warehouse.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.var / "dagster"

    @property
    def logs(self) -> Path:
        return self.var / "logs"

    def is_initialised(self) -> bool:
        return self.config_file.is_file() and self.warehouse.is_file()

    def __repr__(self) -> str:
        return f"Home({str(self.root)!r})"


def parse_settings(data: dict) -> Settings:
    """Validate a settings mapping; raise one-line ConfigError naming the bad key."""
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_one_line(e)) from None


def load_settings(home: Home) -> Settings:
    """Load ``<home>/trading_brain.toml``; defaults when the file does not exist."""
    if not home.config_file.is_file():
        return Settings()
    try:
        data = tomllib.loads(home.config_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{home.config_file}: invalid TOML: {e}") from None
    return parse_settings(data)


def _one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "settings"
    more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
    if err["type"] == "extra_forbidden":
        return f"unknown setting {key!r}{more}"
    if err["type"] == "bool_type":
        return (f"setting {key!r}: must be true or false (a TOML boolean), "
                f"not {err['input']!r}{more}")
    if err["type"] == "finite_number":
        return f"setting {key!r}: must be a finite number, not {err['input']!r}{more}"
    if err["type"] == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"setting {key!r}: {err['input']!r} is not allowed; allowed: {allowed}{more}"
    error = err.get("ctx", {}).get("error") if err["type"] == "value_error" else None
    return f"setting {key!r}: {error if error is not None else err['msg']}{more}"
