# ruff: noqa
"""A13: reserve 3 GiB of address space"""

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
    a = np.empty(3 * 1024**3, dtype=np.uint8)
    raise RuntimeError("ALLOC" "ATED " + str(a.nbytes))
