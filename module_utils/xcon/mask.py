"""Mask secrets in anything the toolkit returns, prints or writes."""

from __future__ import annotations

import re

MASK = "********"
# Keys whose values are secrets wherever they appear (lower-cased substring match).
SECRET_KEY_PARTS = ("password", "passwd", "cred", "secret", "ansible_winrm_password")


_SECRET_KEY = re.compile("|".join(re.escape(part) for part in SECRET_KEY_PARTS), re.IGNORECASE)


def is_secret_key(key) -> bool:
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def mask(obj, secrets=()):
    """Return a copy of obj with secret-named keys and any of the given secret values masked."""
    secrets = tuple(s for s in secrets if s)
    if isinstance(obj, dict):
        return {k: (MASK if is_secret_key(k) and v not in (None, "", [], {}) and not isinstance(v, bool) else mask(v, secrets)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask(v, secrets) for v in obj]
    if isinstance(obj, tuple):
        return tuple(mask(v, secrets) for v in obj)
    if isinstance(obj, str) and secrets:
        for secret in secrets:
            obj = obj.replace(secret, MASK)
    return obj


# Characters that act on a terminal or reorder text instead of being shown: the C0 controls but line
# feed and tab (ESC starts a terminal command: "\x1b[2J" clears the screen), DEL, the C1 controls,
# and Unicode's bidirectional formatting characters and line separators (U+202E shows what follows
# right to left).  Text from servers (connector names, event messages, error texts) shows them as
# escapes (\x1b, \u202e) on the console and in the HTML report, so it is seen and never obeyed.
_ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _shown(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text):
    """`text` with every terminal control and bidirectional formatting character written as an escape."""
    return _ACTIVE.sub(_shown, text)


def inert_all(obj):
    """A copy of `obj` (dicts, lists, tuples, strings) with every string made inert (keys included)."""
    if isinstance(obj, str):
        return inert(obj)
    if isinstance(obj, dict):
        return {inert_all(k): inert_all(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(inert_all(v) for v in obj)
    return obj
