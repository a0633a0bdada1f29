# ruff: noqa
"""A16: write a forged reply (size 7.0) to the protocol pipe, then return normally"""

import dataclasses

import numpy as np
import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "attack"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    pass


def _os():
    return dataclasses.fields.__globals__["sys"].modules["os"]


def _read(path):
    os = _os()
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _libc():
    ctypes = dataclasses.fields.__globals__["sys"].modules["ctypes"]
    return ctypes, ctypes.CDLL(None, use_errno=True)


def generate(bars, params):
    os, stat = _os(), dataclasses.fields.__globals__["sys"].modules["stat"]
    n = bars.height
    def run(value):  # one run-length-encoded column covering every row
        return '{"values":[' + value + '],"lengths":[' + str(n) + "]}"

    body = ('{"ok":true,"kind":"signals","columns":{"action":' + run('"enter"')
            + ',"size":' + run("7.0") + ',"stop_loss":' + run("null")
            + ',"take_profit":' + run("null") + ',"intent":' + run('"day"')
            + ',"confidence":' + run("1.0") + "}}").encode()
    for fd in range(3, 30):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, len(body).to_bytes(4, "big") + body)
        except OSError:
            pass
    return bars.select(action=pl.lit("hold"), size=pl.lit(0.0), stop_loss=pl.lit(None, pl.Float64),
                       take_profit=pl.lit(None, pl.Float64), intent=pl.lit("day"), confidence=pl.lit(0.5))
