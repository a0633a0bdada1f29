"""Fail closed, and layer ablation: switching each layer off lets specific attacks through.

Ablation (run as root, the CI case; gate off; ``allow_weak_isolation`` where a required layer is
off). Each row names the layer(s) switched off, the attacks tried, and which of them must then
succeed (a canary trips); with every layer on all of them are contained (test_escapes.py). This
proves the tests are not vacuous and shows which layer covers which attack on this kernel:

- seccomp off  -> fork succeeds (Landlock/uid drop do not stop fork);
- Landlock off -> reading a world-readable .env / file succeeds (seccomp cannot filter reads);
- uid drop off -> the worker stays root;
- rlimits off  -> a 3 GiB address-space reservation succeeds;
- netns: with seccomp+Landlock off a loopback TCP connect succeeds only when netns is off too;
- seccomp alone covers path sockets: with it off a datagram reaches a world-writable path socket
  (the network namespace and Landlock ABI < 9 do not isolate those);
- Landlock's abstract-unix scope (ABI >= 6): with seccomp and netns off an abstract connect is
  still refused, and gets through only with Landlock off too.
"""

from __future__ import annotations

import os

import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.adapters.sandbox.lockdown import SCOPE_ABI, landlock_abi
from trading_brain.adapters.sandbox.protocol import Layers
from trading_brain.errors import SandboxViolation
from trading_brain_tests.adapters.sandbox.helpers import ESCAPES, run_case, synthetic_bars

pytestmark = pytest.mark.slow
OK_SOURCE = """
import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "quiet"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    pass


def generate(bars, params):
    return bars.with_columns(
        action=pl.lit("hold"), size=pl.lit(0.0), stop_loss=pl.lit(None, pl.Float64),
        take_profit=pl.lit(None, pl.Float64), intent=pl.lit("day"), confidence=pl.lit(0.0),
    ).drop("ts", "open", "high", "low", "close", "volume")
"""


@pytest.mark.parametrize("layer", ["seccomp", "landlock"])
def test_missing_required_layer_is_refused_unless_weak_isolation_allowed(layer):
    weak = Layers(**{layer: False})
    s = SandboxedStrategy(OK_SOURCE, layers=weak)
    with pytest.raises(SandboxViolation, match=f"{layer} not active"):
        s.start()
    assert s._proc is None  # the worker was killed before any strategy call
    s = SandboxedStrategy(OK_SOURCE, layers=weak, allow_weak_isolation=True)
    try:
        assert s.generate(synthetic_bars()).height == 60
        report = s.layers
        assert report.missing_required() == [layer]
        assert report.pdeathsig
        if layer == "seccomp" and landlock_abi() >= SCOPE_ABI:
            assert report.landlock_scopes == ["abstract_unix_socket", "signal"]
    finally:
        s.close()


ABLATION = [
    ("seccomp", {"seccomp"}, ["a09_fork", "a11_kill_parent"], {"a09_fork"}),
    (
        "landlock",
        {"landlock"},
        ["a02_read_dotenv", "a04_write_file"],
        {"a02_read_dotenv"},
    ),
    ("uid_drop", {"uid_drop"}, ["a18_setuid_root"], {"a18_setuid_root"}),
    ("rlimits", {"rlimits"}, ["a13_memory_bomb"], {"a13_memory_bomb"}),
    ("netns_kept", {"seccomp", "landlock"}, ["a07_tcp_connect"], set()),
    ("netns", {"netns", "seccomp", "landlock"}, ["a07_tcp_connect"], {"a07_tcp_connect"}),
    ("seccomp_sockets", {"seccomp"}, ["a21_unix_dgram_sendto"], {"a21_unix_dgram_sendto"}),
    ("scope", {"seccomp", "netns", "landlock"}, ["a08_abstract_unix"], {"a08_abstract_unix"}),
]
if landlock_abi() >= SCOPE_ABI:
    ABLATION.append(("scope_kept", {"seccomp", "netns"}, ["a08_abstract_unix"], set()))


@pytest.mark.skipif(
    os.geteuid() != 0, reason="the ablation matrix is defined for the root (CI) case"
)
@pytest.mark.parametrize(
    ("label", "off", "attacks", "breached"), ABLATION, ids=[a[0] for a in ABLATION]
)
def test_layer_ablation(label, off, attacks, breached, canaries):
    layers = Layers(**{name: False for name in off})
    got = set()
    for name in attacks:
        outcome = run_case(
            canaries.render((ESCAPES / f"{name}.py").read_text()), layers=layers, allow_weak=True
        )
        assert outcome.booted, outcome.messages
        if canaries.violations(outcome.messages):
            got.add(name)
    assert got == breached
