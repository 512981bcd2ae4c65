"""report.json's text: indented by two, keys sorted, and each object of scalars on one line (a fleet's
timeline events and queue readings are thousands of them: one per line keeps the file small).

An object is joined only when none of its lines holds a bracket, so no string value is touched (a
newline inside a string is always escaped).  `by_lines` is the definition: json.dumps' indented text,
then the objects joined line by line.  `dumps` writes the same text in one pass (issue 19: json's
indented encoder is its pure-Python one, and with the joining it took 0.15 s for a 100-link report,
twice a run); data it does not expect (a key that is not a string, a value JSON has no literal for in
this form) goes to `by_lines`.  tests/unit/test_report_json.py holds the two to the same bytes.
"""

from __future__ import annotations

import copy
import json
from json.encoder import encode_basestring  # the C one when available, as json.dumps(ensure_ascii=False)

_BRACKETS = frozenset("{}[]")
_SPECIAL_FLOATS = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


def by_lines(report):
    """report.json's text, by its definition (json.dumps, then objects of scalars joined)."""
    lines = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False).split("\n")
    out, index = [], 0
    while index < len(lines):
        line = lines[index]
        if line.endswith("{"):
            close = index + 1
            while close < len(lines) and not _BRACKETS.intersection(lines[close]):
                close += 1
            if close < len(lines) and close > index + 1 and lines[close].strip() in ("}", "},"):
                members = " ".join(member.strip() for member in lines[index + 1:close])
                out.append(f"{line}{members}{lines[close].strip()}")
                index = close + 1
                continue
        out.append(line)
        index += 1
    return "\n".join(out) + "\n"


class _Unexpected(Exception):
    """A value `dumps` leaves to `by_lines`."""


def _scalar(value):
    """The JSON literal of a scalar as json.dumps writes it, or None for a container."""
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        return _SPECIAL_FLOATS.get(value) or float.__repr__(value)
    if isinstance(value, (dict, list, tuple)):
        return None
    raise _Unexpected(type(value).__name__)


def _encode(value, level, out, head, tail):
    """Append the lines of `value`: `head` precedes it on its first line, `tail` follows its last."""
    literal = _scalar(value)
    if literal is not None:
        out.append(head + literal + tail)
        return
    pad = "  " * (level + 1)
    if isinstance(value, dict):
        if not value:
            out.append(head + "{}" + tail)
            return
        if any(not isinstance(key, str) for key in value):
            raise _Unexpected("key")
        items = sorted(value.items())
        last = len(items) - 1
        literals = [_scalar(v) for _, v in items]
        if None not in literals:
            members = " ".join(f"{encode_basestring(k)}: {lit}{',' if i < last else ''}" for i, ((k, _), lit) in enumerate(zip(items, literals)))
            if not _BRACKETS.intersection(members):
                out.append(f"{head}{{{members}}}{tail}")
                return
        out.append(head + "{")
        for i, (key, item) in enumerate(items):
            _encode(item, level + 1, out, f"{pad}{encode_basestring(key)}: ", "," if i < last else "")
        out.append("  " * level + "}" + tail)
        return
    if not value:
        out.append(head + "[]" + tail)
        return
    out.append(head + "[")
    last = len(value) - 1
    for i, item in enumerate(value):
        _encode(item, level + 1, out, pad, "," if i < last else "")
    out.append("  " * level + "]" + tail)


def dumps(report):
    """report.json's text (see the module docstring); the same bytes as `by_lines`."""
    out = []
    try:
        _encode(report, 0, out, "", "")
    except (_Unexpected, RecursionError):
        return by_lines(report)
    return "\n".join(out) + "\n"


def copied(value):
    """A deep copy of plain JSON data (dicts with string keys, lists, strings, numbers, booleans,
    None) made by json's C code, several times faster than copy.deepcopy (issue 19: the links'
    pictures and plan entries, copied per link); anything else JSON cannot hold: copy.deepcopy."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return copy.deepcopy(value)
