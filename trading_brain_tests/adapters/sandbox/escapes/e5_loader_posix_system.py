# ruff: noqa
"""e5: itertools.__loader__.load_module('posix').system"""

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
    import itertools

    posix = itertools.__loader__.load_module("posix")
    rc = posix.system("touch @@CANARY_DIR@@/PWNED_e5")
    raise RuntimeError(("EXEC" "UTED " if rc == 0 else "system failed ") + str(rc))
