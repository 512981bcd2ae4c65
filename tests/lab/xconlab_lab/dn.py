"""Directory names and the directory's error: DNs in LDAP form with RFC 4514 escaping and in the
X.500 form the MTA writes in its events, and :class:`DirectoryError` (ADSI category and HRESULT of
docs/design.md), which a DN that does not parse raises. Re-exported by ``schema.py``."""
from __future__ import annotations

from typing import List, Optional, Tuple

Rdn = Tuple[str, str]
Dn = Tuple[Rdn, ...]

# -- error categories (docs/design.md) ----------------------------------------------------------
HRESULTS = {
    "AccessDenied": "0x80070005",
    "NoSuchObject": "0x80072030",
    "AlreadyExists": "0x80071392",
    "ObjectClassViolation": "0x80072014",
    "ConstraintViolation": "0x8007202F",
    "InvalidSyntax": "0x80072015",          # a bad attribute value
    "UndefinedAttribute": "0x8007200C",
    "ServerUnavailable": "0x8007203A",
    "UnwillingToPerform": "0x80072035",     # LDAP unwillingToPerform (53)
    "ServiceError": "0x80070427",
    "InvalidParameter": "0x80070057",
}
HRESULT_BAD_DN = "0x80072032"               # InvalidSyntax for a DN that does not parse


class DirectoryError(Exception):
    """A directory operation failed the way ADSI reports it: category, HRESULT, message."""

    def __init__(self, category: str, message: str, hresult: Optional[str] = None) -> None:
        super().__init__(message)
        self.category = category
        self.hresult = hresult or HRESULTS[category]
        self.message = message


# -- DNs (RFC 4514) -----------------------------------------------------------------------------
_SPECIAL = ',+"\\<>;='
_HEX = "0123456789abcdefABCDEF"


def escape_value(value: str) -> str:
    """RFC 4514 escaping of one RDN value: ``, + " \\ < > ; =``, a leading ``#`` or space, a
    trailing space and NUL. Non-ASCII characters are kept as they are (LDAP v3 strings are UTF-8)."""
    out = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char in _SPECIAL or (index == 0 and char in "# ") or (index == last and char == " "):
            out.append("\\" + char)
        elif char == "\0":
            out.append("\\00")
        else:
            out.append(char)
    return "".join(out)


def _unescape(text: str, whole: str) -> str:
    """Undo RFC 4514 escapes (``\\c`` and ``\\XX`` UTF-8 byte escapes) of one RDN value."""
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            pair = text[index + 1:index + 3]
            if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                out.append(int(pair, 16))
                index += 3
                continue
            if index + 1 >= len(text):
                raise DirectoryError("InvalidSyntax", f"'{whole}' is not a valid DN (dangling escape)",
                                     HRESULT_BAD_DN)
            out += text[index + 1].encode("utf-8")
            index += 2
            continue
        if char in ',+"<>;' or char == "\0":
            raise DirectoryError("InvalidSyntax", f"'{whole}' is not a valid DN (unescaped '{char}')",
                                 HRESULT_BAD_DN)
        out += char.encode("utf-8")
        index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise DirectoryError("InvalidSyntax", f"'{whole}' is not a valid DN (bad UTF-8 escape)",
                             HRESULT_BAD_DN) from None


def _split_unescaped(text: str, separator: str) -> List[str]:
    parts, start, index = [], 0, 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == separator:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return parts


RDN_TYPES = ("cn", "ou", "o", "c", "dc")


def parse_dn(text: str) -> Dn:
    """An LDAP DN -> ``((type, value), ...)``; raises InvalidSyntax (0x80072032) when malformed.

    Multi-valued RDNs (``+``) do not occur in an Exchange 5.5 directory and are refused. The empty
    string is the empty DN (the root)."""
    if not isinstance(text, str):
        raise DirectoryError("InvalidSyntax", f"{text!r} is not a valid DN", HRESULT_BAD_DN)
    if text.strip() == "":
        return ()
    rdns = []
    for part in _split_unescaped(text, ","):
        if len(_split_unescaped(part, "+")) > 1:
            raise DirectoryError("InvalidSyntax", f"'{text}' is not a valid DN (multi-valued RDN)",
                                 HRESULT_BAD_DN)
        kind, sep, value = part.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in RDN_TYPES:
            raise DirectoryError("InvalidSyntax", f"'{text}' is not a valid DN (bad RDN '{part}')",
                                 HRESULT_BAD_DN)
        value = value.lstrip(" ")
        # trailing spaces are insignificant unless escaped
        stripped = value.rstrip(" ")
        backslashes = len(stripped) - len(stripped.rstrip("\\"))
        if len(stripped) < len(value) and backslashes % 2 == 1:
            stripped += " "          # the last space was escaped
        value = _unescape(stripped, text)
        if value == "":
            raise DirectoryError("InvalidSyntax", f"'{text}' is not a valid DN (empty RDN value)",
                                 HRESULT_BAD_DN)
        rdns.append((kind, value))
    return tuple(rdns)


def format_dn(dn: Dn) -> str:
    """``((type, value), ...)`` -> LDAP DN text with RFC 4514 escaping."""
    return ",".join(f"{kind}={escape_value(value)}" for kind, value in dn)


def parse_x500(text: str) -> Dn:
    """An X.500 DN ``/o=ORG/ou=SITE/cn=A/cn=B`` -> the DN tuple (most specific first)."""
    if not isinstance(text, str) or not text.startswith("/"):
        raise DirectoryError("InvalidSyntax", f"{text!r} is not an X.500 DN", HRESULT_BAD_DN)
    rdns = []
    for part in text[1:].split("/"):
        kind, sep, value = part.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in RDN_TYPES or value == "":
            raise DirectoryError("InvalidSyntax", f"'{text}' is not a valid X.500 DN", HRESULT_BAD_DN)
        rdns.append((kind, value))
    return tuple(reversed(rdns))


def parse_any_dn(text: str) -> Dn:
    """LDAP form, or X.500 form when the text starts with ``/``."""
    if isinstance(text, str) and text.startswith("/"):
        return parse_x500(text)
    return parse_dn(text)


def x500_upper(dn: Dn) -> str:
    """The X.500 form the MTA writes in events: upper-case, ``/O=ORG/OU=SITE/CN=...``."""
    return "".join(f"/{kind}={value}" for kind, value in reversed(dn)).upper()


def dn_key(dn: Dn) -> Tuple[Tuple[str, str], ...]:
    """Case-insensitive identity of a DN (LDAP names compare without case)."""
    return tuple((kind.lower(), value.casefold()) for kind, value in dn)


def is_under(dn: Dn, base: Dn) -> bool:
    """True when ``dn`` is ``base`` or below it."""
    return len(dn) >= len(base) and dn_key(dn[len(dn) - len(base):]) == dn_key(base)
