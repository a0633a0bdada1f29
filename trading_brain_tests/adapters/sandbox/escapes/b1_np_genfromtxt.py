# ruff: noqa
"""B1: np.genfromtxt of the canary .env (passes the static gate)"""

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
    return_value = np.genfromtxt("@@CANARY_ENV@@", dtype=str, delimiter="\n")
    raise RuntimeError("read " + str(return_value))
