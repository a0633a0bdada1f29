# ruff: noqa
"""B2: file read hidden in an SQL string"""

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
    ctx = pl.SQLContext()
    df = ctx.execute("SELECT * FROM read_csv('@@CANARY_ENV@@')", eager=True)
    raise RuntimeError(str(df.columns) + str(df.rows()))
