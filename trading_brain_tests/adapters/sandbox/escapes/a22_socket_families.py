# ruff: noqa
"""A22: any socket at all: AF_INET, AF_UNIX, socketpair, an abstract unix connect, sendmsg."""

import typing

import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "attack"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    pass


def probe(x: "getattr") -> None:
    pass


def generate(bars, params):
    ga = typing.get_type_hints(probe)["x"]
    socket = ga(ga(typing, "sys"), "modules")["socket"]
    got = []
    tries = {
        "inet": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
        "unix": lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
        "pair": lambda: socket.socketpair(),
        "abstract": lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(
            "\0@@CANARY_ABSTRACT@@"),
        "netlink": lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0),
    }
    denied = []
    for name, fn in tries.items():
        try:
            fn()
            got.append(name)
        except OSError as e:
            denied.append(f"{name}: errno {e.errno}")
    if got:
        raise RuntimeError("SOCKET" "_OPENED " + ",".join(got))
    raise RuntimeError("all denied: " + "; ".join(denied))
