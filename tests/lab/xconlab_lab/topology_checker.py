"""The topology's vocabulary and its checker: the enums and patterns a topology's values must match,
:class:`TopologyError` and the checker that raises it with the key path (see topology.py)."""
from __future__ import annotations

import ipaddress
import math
import re
from typing import Any, List, Mapping, Optional

DEFAULT_START = "2026-01-05T09:00:00Z"
SCHEDULES = ("always", "never", "selected", "remote")
ADDRESS_TYPES = ("ip", "hostname")
RIGHTS = ("admin", "read-only")
AUTHS = ("basic", "ntlm", "kerberos", "credssp")
SCHEMES = ("http", "https")
EXCHANGE_VERSIONS = ("4.0", "5.0", "5.5")
PRODUCT_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_]{0,14}$")        # NetBIOS-style names
HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*$")
SITE_RE = re.compile(r"^[^/=\x00]{1,64}$")
FIREWALL_FACTS = ("product", "inside", "outside", "interfaces", "passers", "routed_paths", "client_transparency")


class TopologyError(ValueError):
    """A malformed topology: ``file``, ``key`` (dotted path) and what was ``expected``."""

    def __init__(self, file: str, key: str, expected: str) -> None:
        self.file, self.key, self.expected = file, key, expected
        super().__init__(f"topology {file}: {key or '(top level)'}: expected {expected}")


def join(key: str, name: Any) -> str:
    """The key path of ``name`` under ``key`` (``servers`` + ``EXIN`` -> ``servers.EXIN``)."""
    return f"{key}.{name}" if key else str(name)


class _Checker:
    """Typed accessors that raise TopologyError with the file and key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any = ...) -> None:
        if got is not ...:
            expected = f"{expected}, got {got!r}"
        raise TopologyError(self.source, key, expected)

    def mapping(self, value: Any, key: str, allowed: Optional[List[str]] = None,
                required: List[str] = ()) -> Mapping:
        if not isinstance(value, Mapping):
            self.fail(key, "a mapping", value)
        for name in value:
            if not isinstance(name, str):
                self.fail(join(key, name), f"a text key (YAML read this key as {type(name).__name__} "
                          f"{name!r}; quote it)")
            if allowed is not None and name not in allowed:
                self.fail(join(key, name), f"one of the keys {', '.join(allowed)} (unknown key '{name}')")
        for name in required:
            if name not in value:
                self.fail(join(key, name), "this key (it is required)")
        return value

    def string(self, value: Any, key: str, max_len: int = 256, pattern: Optional[re.Pattern] = None,
               what: str = "a non-empty string") -> str:
        if not isinstance(value, str) or value == "" or len(value) > max_len:
            self.fail(key, f"{what} of at most {max_len} characters", value)
        if pattern is not None and not pattern.match(value):
            self.fail(key, what, value)
        return value

    def enum(self, value: Any, key: str, choices) -> str:
        if value not in choices:
            self.fail(key, "one of " + " | ".join(choices), value)
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, "true or false", value)
        return value

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"an integer {low}..{high}", value)
        return value

    def number(self, value: Any, key: str, low: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < low:
            self.fail(key, f"a finite number >= {low}", value)
        return float(value)

    def ip(self, value: Any, key: str) -> str:
        try:
            if not isinstance(value, str):
                raise ValueError
            return str(ipaddress.ip_address(value))
        except ValueError:
            self.fail(key, "an IPv4 or IPv6 address", value)

    def reference(self, value: Any, key: str, known, what: str) -> str:
        """The name of a ``what`` that ``known`` (a mapping or list of names) holds."""
        if not isinstance(value, str) or value not in known:
            self.fail(key, f"the name of a {what} defined in this file", value)
        return value

    def names(self, value: Any, key: str, known, what: str) -> List[str]:
        if not isinstance(value, list):
            self.fail(key, f"a list of {what}", value)
        for index, item in enumerate(value):
            self.reference(item, f"{key}[{index}]", known, what)
        if len(set(value)) != len(value):
            self.fail(key, f"distinct {what} names", value)
        return list(value)

