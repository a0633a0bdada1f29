"""The nightly evolution cycle (``app/evolve``; DESIGN §8, issue 11).

``cycle.run_cycle`` is the use case; ``context`` gathers the inputs, ``advisors`` holds the
offline advisor behind ``ports.Advisor``, ``lab`` the recent history and sandboxed signals,
``candidates`` the candidate's plan and gates, ``acts`` what a decision does.
"""
