"""Fixtures of the sandbox tests: canaries with the fake API key in this process's environment."""

from __future__ import annotations

import signal

import pytest

from trading_brain_tests.adapters.sandbox.helpers import install_usr1_counter, make_canaries


@pytest.fixture
def canaries(monkeypatch):
    c = make_canaries()
    monkeypatch.setenv("ANTHROPIC_API_KEY", c.key)
    old = install_usr1_counter(c)
    yield c
    signal.signal(signal.SIGUSR1, old)
    c.close()


@pytest.fixture(autouse=True)
def _needs_kernel_isolation(request):
    """Worker tests need Landlock (seccomp is always there on Linux >= 3.5); skip clearly if not."""
    if request.node.get_closest_marker("slow") is None:
        return
    from trading_brain.adapters.sandbox.lockdown import landlock_abi

    if landlock_abi() < 1:
        pytest.skip("this kernel has no Landlock: the sandbox refuses to run (fail closed)")
