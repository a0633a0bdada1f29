# ruff: noqa
"""A14: spin forever"""

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
    n = 0
    while True:
        n += 1
