"""Vectorised numpy kernels of the sim price process (see ``process.py`` for the model).

Contract: pure functions of their inputs. ``raw_words`` is the only source of randomness (raw
PCG64 words, stable across numpy versions); ``minute_bars`` turns the daily state of a batch of days
plus each day's ``RAW_PER_DAY`` words into unrounded 1-minute prices and volumes, one row per day,
and is independent of which other days are in the batch.
"""

from __future__ import annotations

import math

import numpy as np

DAY_MIN = 1440
_PHI_V, _SD_V = 0.995, 0.5
_RHO, _PHI_F, _Q_FLOW = 0.1, 0.998, 0.5
_PHI_R = 0.5 ** (1 / 120)
_T = np.arange(DAY_MIN + 1) / DAY_MIN
_SEASON = 1.0 + 0.45 * np.cos(2 * np.pi * (np.arange(DAY_MIN) / DAY_MIN - 15 / 24))
_MOMENTUM = (1 - _RHO) * _RHO ** np.arange(8)
_NORMAL_PAIRS = 2 * DAY_MIN + 1  # 4 x 1440 normals + 1 (v_0), from pairs of words
RAW_PER_DAY = 2 * _NORMAL_PAIRS + 2 * DAY_MIN  # + 2 x 1440 uniforms (high, low)


def minute_bars(
    day: dict[str, np.ndarray], raw: np.ndarray, daily_vol: float, daily_volume: float
) -> tuple[np.ndarray, np.ndarray]:
    """Prices ``(4, days, 1440)`` as open/high/low/close and volumes ``(days, 1440)``.

    ``day`` holds per-day arrays: ``prev`` (previous log close), ``ret`` (log return), ``h``
    (intraday variance), ``trend`` (bool), ``jump``/``jmin``/``jlen`` (jump size, start, duration)
    and ``weekend`` (bool); ``raw`` is ``(days, RAW_PER_DAY)`` words from ``raw_words``.
    """
    d = raw.shape[0]
    normals = normal(raw[:, : 2 * _NORMAL_PAIRS])
    xi, z, noise, zf = normals[:, : 4 * DAY_MIN].reshape(d, 4, DAY_MIN).transpose(1, 0, 2)
    u_hi, u_lo = uniform(raw[:, 2 * _NORMAL_PAIRS :]).reshape(d, 2, DAY_MIN).transpose(1, 0, 2)
    v = ar1(_SD_V * math.sqrt(1 - _PHI_V**2) * xi, _PHI_V, _SD_V * normals[:, -1])
    w = _SEASON * np.exp(2 * v)
    sig = np.sqrt(w * (day["h"] / w.sum(axis=1))[:, None])
    path = day["prev"][:, None] + _log_path(day, sig, z, zf)
    a, b = path[:, :-1], path[:, 1:]
    d2, s2 = (b - a) ** 2, 2 * sig**2
    hi = 0.5 * (a + b + np.sqrt(d2 - s2 * np.log(u_hi)))
    lo = 0.5 * (a + b - np.sqrt(d2 - s2 * np.log(u_lo)))
    return np.exp(np.stack([a, hi, lo, b])), _volume(day, daily_vol, daily_volume, v, noise)


def _log_path(
    day: dict[str, np.ndarray], sig: np.ndarray, z: np.ndarray, zf: np.ndarray
) -> np.ndarray:
    """``X`` (days x 1441, ``X_0 = 0``): OU on range days, momentum + flow on trend days, the jump
    cascade, then the bridge that lands each day exactly on its daily return."""
    trend, e = day["trend"], sig * z
    x = np.zeros((e.shape[0], DAY_MIN + 1))
    x[~trend, 1:] = ar1(e[~trend], _PHI_R, 0.0)
    flow = (1 - _PHI_F) * ar1(sig[trend] * zf[trend], _PHI_F, 0.0)
    steps = math.sqrt(1 - _Q_FLOW) * _momentum(e[trend]) + math.sqrt(_Q_FLOW) * flow
    x[trend, 1:] = np.cumsum(steps, axis=1)
    ramp = (np.arange(DAY_MIN + 1) - day["jmin"][:, None]) / day["jlen"][:, None]
    x += day["jump"][:, None] * np.clip(ramp, 0.0, 1.0)
    x -= _T * (x[:, -1] - day["ret"])[:, None]
    return x


def _volume(
    day: dict[str, np.ndarray],
    daily_vol: float,
    daily_volume: float,
    v: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """Per-minute volume: seasonality, intraday vol factor, day variance, weekends, jump bursts."""
    vol = (daily_volume / DAY_MIN) * _SEASON * np.exp(0.8 * v + 0.35 * noise - 0.06)
    scale = np.sqrt(day["h"]) / daily_vol * np.where(day["weekend"], 0.6, 1.0)
    after = np.arange(DAY_MIN) - day["jmin"][:, None]
    burst = (day["jump"] != 0)[:, None] & (after >= 0) & (after < day["jlen"][:, None] + 30)
    return vol * scale[:, None] * np.where(burst, 3.0, 1.0)


def _momentum(e: np.ndarray) -> np.ndarray:
    """``e`` (days x minutes) filtered along minutes by the causal kernel ``_MOMENTUM``."""
    out = _MOMENTUM[0] * e
    for j in range(1, _MOMENTUM.size):
        out[:, j:] += _MOMENTUM[j] * e[:, :-j]
    return out


def raw_words(seed: int, key: tuple[int, int], index: int, stream: int, n: int) -> np.ndarray:
    """``n`` raw 64-bit words of the PCG64 stream for (seed, symbol, index, stream).

    Only raw bit-generator output is used (numpy keeps it stable across versions, unlike the
    ``Generator`` distribution algorithms): uniforms and Box-Muller normals are derived here.
    """
    return np.random.PCG64(np.random.SeedSequence([seed, *key, index, stream])).random_raw(n)


def uniform(raw: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1] from raw 64-bit words (53-bit resolution)."""
    return ((raw >> np.uint64(11)) + 1.0) * 2.0**-53


def normal(raw: np.ndarray) -> np.ndarray:
    """Standard normals (Box-Muller) from an even number of raw words along the last axis."""
    u = uniform(raw)
    m = u.shape[-1] // 2
    r, theta = np.sqrt(-2.0 * np.log(u[..., :m])), 2.0 * np.pi * u[..., m:]
    return np.concatenate([r * np.cos(theta), r * np.sin(theta)], axis=-1)


def ar1(x: np.ndarray, phi: float, y0: float | np.ndarray) -> np.ndarray:
    """Row-wise ``y_t = φ y_{t-1} + x_t`` with ``y_{-1} = y0`` (chunks keep φ^-n moderate)."""
    out = np.empty_like(x)
    step = max(1, int(10 / -math.log(phi)))
    prev = np.broadcast_to(np.asarray(y0, dtype=float), x.shape[:-1])
    for a in range(0, x.shape[-1], step):
        seg = x[..., a : a + step]
        p = phi ** np.arange(1, seg.shape[-1] + 1)
        y = p * (prev[..., None] + np.cumsum(seg / p, axis=-1))
        out[..., a : a + step] = y
        prev = y[..., -1]
    return out
