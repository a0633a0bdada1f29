# ruff: noqa
"""A20: libc open(O_CREAT) through numpy's ctypes"""

import dataclasses

import numpy as np
import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "attack"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    pass


def generate(bars, params):
    libc = np.ctypeslib.ctypes.CDLL(None)
    fd = libc.open(b"@@CANARY_DIR@@/PWNED_a20", 0o101, 0o644)
    raise RuntimeError("fd " + str(fd))
