# ruff: noqa
"""e4: str.format traversing attributes inside a string"""

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
    raise RuntimeError("{0.__globals__[sys].modules[os].environ}".format(dataclasses.fields))
