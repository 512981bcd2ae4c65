"""Mask secrets in anything the toolkit returns, prints or writes."""

from __future__ import annotations

import functools
import json
import re

MASK = "********"
# Keys whose values are secrets wherever they appear (lower-cased substring match).
SECRET_KEY_PARTS = ("password", "passwd", "cred", "secret", "ansible_winrm_password")


_SECRET_KEY = re.compile("|".join(re.escape(part) for part in SECRET_KEY_PARTS), re.IGNORECASE)


def is_secret_key(key) -> bool:
    return isinstance(key, str) and _secret_name(key)


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    """The regex's answer for one key name, remembered: results and reports repeat the same few
    hundred key names thousands of times (issue 19: the regex per key was most of mask's time)."""
    return _SECRET_KEY.search(key) is not None


def names_no_secret(text):
    """True when `text` (e.g. data dumped as JSON with ensure_ascii=False) holds no word of
    SECRET_KEY_PARTS anywhere, in any case: no key in it is secret-named, so masking its data
    changes nothing.  (str.lower and `in`: 10x quicker than the regex on 2 MB; U+017F, the long s,
    is the one character the regex's IGNORECASE takes for one of the words' letters that lower()
    does not turn into it, so a text with it is never called clean.)"""
    low = text.lower()
    return "\u017f" not in low and not any(part in low for part in SECRET_KEY_PARTS)


def mask(obj, secrets=()):
    """Return a copy of obj with secret-named keys and any of the given secret values masked."""
    return _masked(obj, tuple(s for s in secrets if s))


# Values returned as they are when no secret value is searched for (nothing in them to mask).
_PLAIN = (str, int, float, bool, type(None))


def _masked(obj, secrets):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if is_secret_key(k) and v not in (None, "", [], {}) and not isinstance(v, bool):
                out[k] = MASK
            elif v.__class__ in _PLAIN and (not secrets or v.__class__ is not str):
                out[k] = v   # (the walk's answer for it, without the call: most of a result's values)
            else:
                out[k] = _masked(v, secrets)
        return out
    if isinstance(obj, list):
        return [_masked(v, secrets) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_masked(v, secrets) for v in obj)
    if isinstance(obj, str) and secrets:
        for secret in secrets:
            obj = obj.replace(secret, MASK)
    return obj

# Values under secret keys shorter than this are masked under their key only, not searched for in
# other text (a two-letter value would garble every message it happens to occur in).
MIN_SECRET_LENGTH = 4


def _secret_values(obj, found):
    """Collect the string values stored under secret-named keys (except the mask itself)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if is_secret_key(key) and isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH and value != MASK:
                found.add(value)
            else:
                _secret_values(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _secret_values(value, found)
    return found


def mask_data(obj, secrets=()):
    """A masked copy of a report or any data written for people: secret-named keys, their values
    wherever they recur (e.g. quoted in a message), and `secrets`."""
    if not any(secrets):
        # Quick path (issue 19: a report is masked before it is returned, written and summarised, and
        # one walk of a 100-link report took 0.15 s): data whose JSON text holds no secret-like word
        # has nothing to mask, and its copy is that text read back.
        text = plain_json(obj)
        if text is not None and names_no_secret(text):
            return json.loads(text)
    known = _secret_values(obj, set(s for s in secrets if s))
    # longest first, so a secret containing another is replaced whole
    return mask(obj, tuple(sorted(known, key=len, reverse=True)))


def masked_json_text(obj, **dump_kw):
    """`obj` masked as mask_data masks it, as JSON text (json.dumps with `dump_kw`): the text of `obj`
    itself when it holds no secret-like word (one dump, no walk), else the text of its masked copy."""
    text = json.dumps(obj, **dump_kw)
    if names_no_secret(text):
        return text
    return json.dumps(mask_data(obj), **dump_kw)


def plain_json(obj):
    """`obj` as compact JSON text with its characters as they are, or None when it is not plain
    JSON data (a value JSON cannot hold)."""
    try:
        return json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError):
        return None


# Characters that act on a terminal or reorder text instead of being shown: the C0 controls but line
# feed and tab (ESC starts a terminal command: "\x1b[2J" clears the screen), DEL, the C1 controls,
# and Unicode's bidirectional formatting characters and line separators (U+202E shows what follows
# right to left).  Text from servers (connector names, event messages, error texts) shows them as
# escapes (\x1b, \u202e) on the console and in the HTML report, so it is seen and never obeyed.
_ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _shown(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@functools.lru_cache(maxsize=8192)
def inert(text):
    """`text` with every terminal control and bidirectional formatting character written as an escape.
    (Remembered: the HTML report prints the same server names and codes thousands of times.)"""
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
