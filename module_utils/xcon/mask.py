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
