# ruff: noqa
"""A07: connect to a loopback TCP listener of the host"""

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
    ctypes, libc = _libc()
    s = libc.socket(2, 1, 0)
    if s < 0:
        raise RuntimeError("socket errno " + str(ctypes.get_errno()))
    port = int("@@CANARY_PORT@@")
    addr = bytes([2, 0, port >> 8, port & 255, 127, 0, 0, 1]) + bytes(8)
    rc = libc.connect(s, addr, 16)
    raise RuntimeError(("CONN" "ECTED " if rc == 0 else "connect errno ") + str(ctypes.get_errno()))
