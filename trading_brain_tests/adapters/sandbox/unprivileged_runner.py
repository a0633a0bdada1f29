"""Runs a few sandbox cases as an UNPRIVILEGED host (started by test_unprivileged.py via setpriv).

Usage: ``python3 -I -B unprivileged_runner.py <json>`` with ``sys_path``, ``canary`` substitutions
and the case names; prints one JSON object: the worker's layer report, whether a legitimate
strategy gave identical results inside and outside, every message per attack, and how many
SIGUSR1 this (host) process received.
"""

import json
import signal
import sys


def main() -> None:
    args = json.loads(sys.argv[1])
    sys.path[:0] = args["sys_path"]
    from pathlib import Path

    from trading_brain.adapters.sandbox.host import SandboxedStrategy
    from trading_brain.errors import StrategyError
    from trading_brain_tests.adapters.sandbox.helpers import (
        ESCAPES,
        LEGIT,
        in_process_generate,
        load_in_process,
        synthetic_bars,
    )

    usr1 = [0]
    signal.signal(signal.SIGUSR1, lambda *_: usr1.__setitem__(0, usr1[0] + 1))
    bars = synthetic_bars(400)
    legit = (LEGIT / "l2_polars_tz.py").read_text()
    with SandboxedStrategy(legit, timeout_s=30) as s:
        inside = s.generate(bars)
        report = s.layers.model_dump()
    same = inside.equals(in_process_generate(load_in_process(legit, "l2"), bars, {}))
    messages = {}
    for name in args["attacks"]:
        src = (ESCAPES / f"{name}.py").read_text()
        for k, v in args["subs"].items():
            src = src.replace(k, v)
        try:
            with SandboxedStrategy(src, static_gate=False, timeout_s=5) as s:
                messages[name] = str(s.generate(bars).rows()[:3])
        except StrategyError as e:
            messages[name] = f"{type(e).__name__}: {e}"
    print(
        json.dumps(
            {
                "layers": report,
                "identical": same,
                "messages": messages,
                "usr1": usr1[0],
                "python": sys.executable,
                "file": str(Path(__file__)),
            }
        )
    )


if __name__ == "__main__":
    main()
