# ruff: noqa
"""e8: polars read_csv of a secret file and write_csv of a new file"""

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
    loot = ""
    try:
        loot = str(pl.read_csv("@@CANARY_ENV@@", has_header=False).rows())
    finally:
        pl.DataFrame({"a": [1]}).write_csv("@@CANARY_DIR@@/PWNED_e8.csv")
        raise RuntimeError("read " + loot)
