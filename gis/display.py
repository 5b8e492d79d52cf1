"""Catalog text on a terminal or in JSON output: shown literally, never interpreted.

Titles, notes and keywords come from whoever published a layer. Printed as
Rich markup, ``Limite [/x]`` crashes the command and ``[red]`` restyles the
table; printed raw, ``\\x1b[2J`` clears the operator's screen and ``\\r``
overwrites what was shown. So every value goes to Rich as a :class:`Text`
(no markup, no emoji codes), with control characters written as visible
escapes, and JSON output escapes the control characters that ``json.dumps``
leaves raw (DEL, the C1 set, the bidirectional overrides), so that the JSON
still parses back to the exact text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.text import Text

# C0 (but tab and newline), DEL, C1 (ESC's 8-bit forms among them), the bidirectional marks and
# overrides that reorder what is displayed, and the Unicode line and paragraph separators.
_CONTROL = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE_IN_CELL = re.compile(f"[{_CONTROL}]")
_UNSAFE_IN_LINE = re.compile(f"[{_CONTROL}\t\n]")
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(value: Any) -> str:
    """``str(value)`` (``""`` for None) with control characters as visible escapes; newlines and tabs kept.

    >>> printable("Limite\\x1b[31m rouge\\r")
    'Limite\\\\x1b[31m rouge\\\\r'
    """
    return _UNSAFE_IN_CELL.sub(_escape, "" if value is None else str(value))


def one_line(value: Any) -> str:
    """Like :func:`printable`, but newlines and tabs escaped too: for an ``Error: ...`` line."""
    return _UNSAFE_IN_LINE.sub(_escape, "" if value is None else str(value))


def cell(value: Any) -> Text:
    """A table cell or title showing ``value`` literally (Rich markup and emoji codes not interpreted)."""
    return Text(printable(value))


def to_json(data: Any, indent: int | None = None) -> str:
    """JSON text of ``data`` (UTF-8 kept readable) in which no character can drive a terminal."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
