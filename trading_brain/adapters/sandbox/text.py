"""``safe_text``: make text that came from strategy code safe to print, log, store and show.

A strategy's exception text is attacker-controlled: raw, an OSC sequence sets the terminal title or
writes the clipboard (OSC 52), CSI sequences move the cursor or erase lines. ``safe_text`` replaces
every C0 control character except newline and tab, DEL, every C1 control (U+0080-U+009F, which
includes the 8-bit CSI/OSC introducers) and the Unicode bidirectional overrides/isolates with a
visible escape (``\\x1b``, ``\\x9b``, ``\\u202e``), so the text stays readable and nothing reaches a
terminal as a control. The sandbox host applies it once where worker text enters the host
(``protocol.parse_reply``); the CLI's one-line error printer applies it to every error.
Stdlib only, cheap to import.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe_text(text: str) -> str:
    """``text`` with terminal/bidi control characters replaced by visible escapes."""
    return _UNSAFE.sub(_escape, text)
