"""The sim market's price process: one deterministic, seedable 1-minute path per symbol.

Contract: for a given ``(seed, symbol, Character)`` the 1-minute bars of UTC day ``k`` (days counted
from ``EPOCH`` = 2015-01-01 00:00 UTC) are a pure function of those inputs and ``k`` — never of the
window asked for, the order of calls or the process — so any two windows agree on every bar they
share, across restarts. No bars exist before ``EPOCH``. Prices are positive, finite and rounded to
the pair's price decimals; every bar has ``low <= min(open, close) <= max(open, close) <= high``.
Coarser bars are exact aggregations of the same day's 1-minute path (open=first, high=max,
low=min, close=last, volume=sum); every timeframe divides a day, so bars never straddle days.
Randomness: the daily drivers of block ``b`` (512 days) come from
``PCG64(SeedSequence([seed, *symbol_key, b, 0]))``, the intraday draws of day ``k`` from
``PCG64(SeedSequence([seed, *symbol_key, k, 1]))``; ``symbol_key`` is a blake2b hash. Uniforms and
normals (Box-Muller) are built from the raw 64-bit stream, which numpy keeps stable across versions.
The vectorised intraday kernels live in ``intraday.py``; this module holds the daily recursion, the
per-day LRU and window slicing.

Model. Daily level, day ``k`` with log close ``L_k``, anchor ``A = ln(anchor)``, daily vol ``σ̄``:

- regime ``s_k ∈ {range, up, down}``: a Markov chain that stays with probability 0.97 (range) or
  0.96 (trend) and otherwise switches: range → up/down equally, trend → range 70 %, the opposite
  trend 30 %;
- GARCH(1,1) variance ``h_k = ω + α ε²_{k-1} + β h_{k-1}``, ``ω = σ̄²(1−α−β)``, α = 0.10, β = 0.85,
  clipped to [0.05 σ̄², 12 σ̄²]; weekend factor ``w_k`` = 0.7 on Saturdays and Sundays, else 1;
- return ``R_k = μ(s_k) − κ(L_{k-1} − A) − κ_r 1[range](L_{k-1} − C) + ε_k``,
  ``ε_k = g(s_k) √(h_k w_k) z_k + J_k``, with μ = ±0.3 σ̄ in trends and 0 in range, g = 0.5 (range),
  0.95 (up), 1.2 (down); κ = 0.008 (half-life ≈ 3 months: the price wanders around its anchor),
  κ_r = 0.15 (pull to the level ``C`` where the current range began); ``J_k`` a jump with
  probability 2 %/day of size ``±σ̄(1.5 + 1.5|N|)`` (down 60 %); ``L_k = L_{k-1} + R_k`` (``R_k``
  clipped to ±0.7, ``L_{-1} = A``). The day's intraday variance is ``h'_k = G(s_k)² h_k w_k`` with
  G = 0.9 (range), 0.95 (up), 1.2 (down): range days wiggle a lot but go nowhere.

Intraday, minute ``t = 0..1439`` of day ``k``:

- seasonality ``u_t = 1 + 0.45 cos(2π(t/1440 − 15/24))`` (busiest ≈ 15:00 UTC);
- log-volatility ``v_t = φ_v v_{t-1} + η ξ_t`` (φ_v = 0.995, stationary sd 0.5): intraday
  clustering;
- ``σ_t ∝ √u_t e^{v_t}`` scaled so that ``Σ σ_t² = h'_k``; shocks ``e_t = σ_t z_t``;
- trend days: increments ``√(1−q) (e ∗ k)_t + √q (1−φ_f) f_t`` with the momentum kernel
  ``k_j = (1−ρ)ρ^j`` (ρ = 0.1) and a persistent flow ``f_t = φ_f f_{t-1} + σ_t z'_t`` (φ_f = 0.998,
  ≈ 8 h memory), q = 0.5: hour-to-hour returns are positively autocorrelated;
  range days: ``X_t = φ_r X_{t-1} + e_t`` (OU, half-life 120 min): negatively autocorrelated;
- the jump: ``X_t += J_k·clip((t − m_k)/d_k, 0, 1)``: a cascade from a random minute ``m_k`` lasting
  ``d_k`` ∈ [5, 40] minutes; the bridge ``X_t ← X_t − (t/1440)(X_1440 − R_k)``
  makes the day close exactly at ``L_k``; log price ``ℓ_t = L_{k-1} + X_t``;
- minute ``i`` opens at ``e^{ℓ_i}`` and closes at ``e^{ℓ_{i+1}}``; high/low are Brownian-bridge
  extremes ``(a + b ± √((b − a)² − 2σ_i² ln U))/2`` of its log open ``a`` and close ``b``;
- ``volume_i = V̄/1440 · u_i e^{0.8 v_i} √(h'_k/σ̄²) LN(0, 0.35²)``, ×0.6 at weekends, ×3 during a
  jump and the 30 minutes after it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from trading_brain.adapters.sim.intraday import (
    DAY_MIN,
    RAW_PER_DAY,
    minute_bars,
    normal,
    raw_words,
    uniform,
)

EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
EPOCH_S = int(EPOCH.timestamp())
REGIMES = ("range", "up", "down")
RANGE, UP, DOWN = 0, 1, 2
_BLOCK = 512
_BATCH = 16  # days generated per vectorised batch (arrays stay cache-sized)
_ALPHA, _BETA = 0.10, 0.85
_STAY = (0.97, 0.96, 0.96)
_GAIN_DAY = (0.5, 0.95, 1.2)
_GAIN_INTRA = (0.9, 0.95, 1.2)
_DRIFT = (0.0, 0.3, -0.3)
_KAPPA, _KAPPA_RANGE = 0.008, 0.15
_JUMP_P = 0.02


@dataclass(frozen=True)
class Character:
    """A symbol's personality: typical price level, daily log-return vol, price decimals, volume."""

    anchor: float
    daily_vol: float
    decimals: int
    daily_volume: float  # typical daily volume in base units


@dataclass
class DayBars:
    """The 1-minute bars of one UTC day (arrays of 1440) and their cached aggregations."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    agg: dict[int, tuple[np.ndarray, ...]] = field(default_factory=dict)

    def aggregate(self, n: int) -> tuple[np.ndarray, ...]:
        """(open, high, low, close, volume) of the day's ``n``-minute bars (``n`` divides 1440)."""
        if n == 1:
            return self.open, self.high, self.low, self.close, self.volume
        if n not in self.agg:
            shape = (DAY_MIN // n, n)
            self.agg[n] = (
                self.open[::n].copy(),
                self.high.reshape(shape).max(axis=1),
                self.low.reshape(shape).min(axis=1),
                self.close[n - 1 :: n].copy(),
                self.volume.reshape(shape).sum(axis=1),
            )
        return self.agg[n]


def symbol_key(symbol: str) -> tuple[int, int]:
    """Two stable 32-bit words derived from ``symbol`` (independent of PYTHONHASHSEED)."""
    d = hashlib.blake2b(symbol.encode(), digest_size=8).digest()
    return int.from_bytes(d[:4], "little"), int.from_bytes(d[4:], "little")


class _Daily:
    """The daily recursion of one ``(seed, symbol key, Character)``: a pure function of those
    three (each block from its own seeded stream, continuing the state where the previous block
    ended), grown on demand, never changed. ``PriceProcess(share_daily=True)`` (what ``SimMarket``
    builds) shares one per key in the process (``_SHARED``, weakly held): simulate's two markets
    over the same seed compute the years of days before its first day once, not twice. The key
    holds every input of the recursion, so a shared object never answers another key's values."""

    def __init__(self, seed: int, key: tuple[int, int], char: Character) -> None:
        self.seed, self.key, self.char = seed, key, char
        self.lock = threading.Lock()
        self.log_close: list[float] = []
        self.var: list[float] = []
        self.regime: list[int] = []
        self.jump: list[float] = []
        self.jump_minute: list[tuple[int, int]] = []
        self.state = (
            math.log(char.anchor),
            char.daily_vol**2,
            RANGE,
            0.0,
            math.log(char.anchor),
        )

    @classmethod
    def of(cls, seed: int, key: tuple[int, int], char: Character) -> _Daily:
        """The process-wide recursion of ``(seed, key, char)`` (made on first use)."""
        with _SHARED_LOCK:
            daily = _SHARED.get((seed, key, char))
            if daily is None:
                daily = _SHARED[seed, key, char] = cls(seed, key, char)
            return daily

    def ensure(self, k: int) -> None:
        """Grow the recursion up to day ``k`` included."""
        with self.lock:
            while len(self.log_close) <= k:
                self._block(len(self.log_close) // _BLOCK)

    def _block(self, b: int) -> None:
        raw = raw_words(self.seed, self.key, b, 0, 8 * _BLOCK)
        z, jz = normal(raw[: 2 * _BLOCK]).reshape(2, _BLOCK)
        u_reg, u_sw, u_jump, u_sign, u_min, u_len = uniform(raw[2 * _BLOCK :]).reshape(6, _BLOCK)
        jmin = (u_min * (DAY_MIN - 60)).astype(int)  # jump start in [0, 1380)
        jlen = 5 + (u_len * 36).astype(int)  # jump duration in [5, 40] minutes
        sb = self.char.daily_vol
        big_a, lo_h, hi_h = math.log(self.char.anchor), 0.05 * sb * sb, 12 * sb * sb
        level, h, reg, eps, centre = self.state
        for i in range(_BLOCK):
            k = b * _BLOCK + i
            h = min(
                max(sb * sb * (1 - _ALPHA - _BETA) + _ALPHA * eps * eps + _BETA * h, lo_h), hi_h
            )
            if u_reg[i] > _STAY[reg]:
                reg = _switch(reg, float(u_sw[i]))
                centre = level
            h_eff = h * (0.7 if _weekend(k) else 1.0)
            jump = 0.0
            if u_jump[i] < _JUMP_P:
                jump = sb * (1.5 + 1.5 * abs(jz[i])) * (-1.0 if u_sign[i] < 0.6 else 1.0)
            eps = math.sqrt(h_eff) * _GAIN_DAY[reg] * z[i] + jump
            pull = -_KAPPA * (level - big_a) - (
                _KAPPA_RANGE * (level - centre) if reg == RANGE else 0.0
            )
            r = min(max(_DRIFT[reg] * sb + pull + eps, -0.7), 0.7)
            level += r
            # log_close last: a reader checks its length without the lock
            self.var.append(h_eff * _GAIN_INTRA[reg] ** 2)
            self.regime.append(reg)
            self.jump.append(jump)
            self.jump_minute.append((int(jmin[i]), int(jlen[i])))
            self.log_close.append(level)
        self.state = (level, h, reg, eps, centre)


_SHARED: weakref.WeakValueDictionary[tuple[int, tuple[int, int], Character], _Daily] = (
    weakref.WeakValueDictionary())
_SHARED_LOCK = threading.Lock()


class PriceProcess:
    """Daily state (cached from EPOCH, grown on demand) and an LRU of generated days for one
    symbol."""

    def __init__(self, seed: int, symbol: str, character: Character, cache_days: int = 32,
                 *, share_daily: bool = False) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed, self.symbol, self.char = seed, symbol, character
        self._key = symbol_key(symbol)
        self._cache_days = max(1, cache_days)
        self._days: OrderedDict[int, DayBars] = OrderedDict()
        self._lock = threading.Lock()
        self._daily = _Daily.of(seed, self._key, character) if share_daily \
            else _Daily(seed, self._key, character)
        # the daily lists only ever grow (appended under the daily lock, never changed)
        self._log_close = self._daily.log_close
        self._var = self._daily.var  # effective variance h'_k
        self._regime = self._daily.regime
        self._jump = self._daily.jump
        self._jump_minute = self._daily.jump_minute  # (first minute, duration)

    # ---- daily level -------------------------------------------------------------------------

    def _ensure_daily(self, k: int) -> None:
        if len(self._log_close) <= k:
            self._daily.ensure(k)

    def daily(self, k0: int, k1: int) -> dict[str, np.ndarray]:
        """Hidden daily state of days ``[k0, k1)``: regime code, daily vol √h', jump size, log
        close."""
        k0, k1 = max(k0, 0), max(k1, 0)
        with self._lock:
            if k1 > k0:
                self._ensure_daily(k1 - 1)
            sl = slice(k0, max(k1, k0))
            return {
                "day": np.arange(k0, max(k1, k0)),
                "regime": np.array(self._regime[sl], dtype=np.int8),
                "vol": np.sqrt(np.array(self._var[sl], dtype=float)),
                "jump": np.array(self._jump[sl], dtype=float),
                "log_close": np.array(self._log_close[sl], dtype=float),
            }

    # ---- intraday ----------------------------------------------------------------------------

    def day(self, k: int) -> DayBars:
        """The 1-minute bars of day ``k`` (k >= 0), from the LRU or freshly generated; exactly
        ``days(k, k + 1)[0]`` (same LRU order), without its bookkeeping when ``k`` is held."""
        with self._lock:
            found = self._days.get(k)
            if found is not None:
                self._days.move_to_end(k)
                return found
        return self.days(k, k + 1)[0]

    def days(self, k0: int, k1: int) -> list[DayBars]:
        """The 1-minute bars of days ``[k0, k1)``; missing days are generated as one batch."""
        if k0 < 0:
            raise ValueError(f"no sim days before EPOCH (asked for day {k0})")
        with self._lock:
            self._ensure_daily(k1 - 1)
            cached = {k: self._days.get(k) for k in range(k0, k1)}
            missing = [k for k, v in cached.items() if v is None]
            made = dict(zip(missing, self._generate(missing), strict=True)) if missing else {}
            found: list[DayBars] = []
            for k in range(k0, k1):
                got = cached[k]
                if got is None:
                    got = made[k]
                self._days[k] = got
                self._days.move_to_end(k)
                found.append(got)
            while len(self._days) > self._cache_days:
                self._days.popitem(last=False)
            return found

    def _generate(self, ks: list[int]) -> list[DayBars]:
        c = self.char
        prev = np.array([self._log_close[k - 1] if k > 0 else math.log(c.anchor) for k in ks])
        jmin, jlen = np.array([self._jump_minute[k] for k in ks]).reshape(-1, 2).T
        day = {
            "prev": prev,
            "ret": np.array([self._log_close[k] for k in ks]) - prev,
            "h": np.array([self._var[k] for k in ks]),
            "trend": np.array([self._regime[k] != RANGE for k in ks]),
            "jump": np.array([self._jump[k] for k in ks]),
            "jmin": jmin,
            "jlen": jlen,
            "weekend": np.array([_weekend(k) for k in ks]),
        }
        raw = np.stack([raw_words(self.seed, self._key, k, 1, RAW_PER_DAY) for k in ks])
        prices, vol = minute_bars(day, raw, c.daily_vol, c.daily_volume)
        prices = np.maximum(np.round(prices, c.decimals), 10.0**-c.decimals)
        vol = np.round(vol, 8)
        o, h, lo, cl = prices  # (4, days, 1440): open, high, low, close
        return [DayBars(o[i].copy(), h[i].copy(), lo[i].copy(), cl[i].copy(), vol[i].copy())
                for i in range(len(ks))]

    # ---- windows -----------------------------------------------------------------------------

    def bars(self, n: int, start: int, end: int) -> dict[str, np.ndarray]:
        """``n``-minute bars (``n`` divides 1440) opening in minutes ``[start, end)`` since EPOCH.

        Returns ``ts`` (open time, epoch microseconds) and ``open, high, low, close, volume``.
        """
        first = max(-(-start // n) * n, 0)
        stop = -(-end // n) * n
        parts: list[tuple[np.ndarray, ...]] = []
        stamps: list[np.ndarray] = []
        k_end = -(-stop // DAY_MIN) if stop > first else 0
        for chunk in range(first // DAY_MIN, k_end, _BATCH):
            for k, day in enumerate(self.days(chunk, min(chunk + _BATCH, k_end)), start=chunk):
                day0 = k * DAY_MIN
                i0, i1 = max(first - day0, 0) // n, min(stop - day0, DAY_MIN) // n
                parts.append(tuple(a[i0:i1] for a in day.aggregate(n)))
                stamps.append(day0 + n * np.arange(i0, i1, dtype=np.int64))
        cols = ("open", "high", "low", "close", "volume")
        if not parts:
            return {"ts": np.empty(0, np.int64), **{c: np.empty(0) for c in cols}}
        minutes = np.concatenate(stamps)
        out = {"ts": (EPOCH_S + minutes * 60) * 1_000_000}
        out.update({c: np.concatenate([p[j] for p in parts]) for j, c in enumerate(cols)})
        return out


def _weekend(k: int) -> bool:
    """True when day ``k`` is a Saturday or Sunday (EPOCH is a Thursday: day 2 is a Saturday)."""
    return (k + 3) % 7 >= 5


def _switch(reg: int, u: float) -> int:
    if reg == RANGE:
        return UP if u < 0.5 else DOWN
    if u < 0.7:
        return RANGE
    return DOWN if reg == UP else UP
