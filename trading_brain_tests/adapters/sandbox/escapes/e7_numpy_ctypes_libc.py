# ruff: noqa
"""e7: numpy.ctypeslib.ctypes.CDLL(None) -> libc.system"""

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
    rc = libc.system(b"touch @@CANARY_DIR@@/PWNED_e7")
    raise RuntimeError(("EXEC" "UTED " if rc == 0 else "system failed ") + str(rc))
