# ruff: noqa
"""A15: sleep far past the timeout"""

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
    dataclasses.fields.__globals__["sys"].modules["time"].sleep(1000)
