"""The anthropic advisor (DESIGN §8, issue 12): the SDK used as it is meant to be.

Modules: ``client`` (the SDK client, model check), ``prompts`` (constants and system blocks),
``wire`` (reply schemas and requests), ``budget`` (count, admit, record cost), ``call`` (one
structured call: budget, thoughts, validation, re-asks), ``roles`` (analyst, panel, coder,
reviewer messages and checks) and ``advisor`` (``AnthropicAdvisor``, a ``ports.Advisor``).
"""
