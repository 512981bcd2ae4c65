"""Directory DNs: RFC 4514 escaping of attribute values, splitting a DN, the parts of a connector
DN and its X.500 form (the profile's ``dn`` templates name the version's forms)."""

from __future__ import annotations

_SPECIAL = ',+"\\<>;='


def escape_rdn_value(value: str) -> str:
    """RFC 4514 escaping of one attribute value (non-ASCII is kept as is)."""
    out = []
    for index, char in enumerate(value):
        if char in _SPECIAL or (index == 0 and char in "# ") or (index == len(value) - 1 and char == " "):
            out.append("\\" + char)
        elif char == "\0":
            out.append("\\00")
        else:
            out.append(char)
    return "".join(out)


def unescape_rdn_value(value: str) -> str:
    """Inverse of escape_rdn_value; also decodes \\XX hex escapes (UTF-8 byte sequences)."""
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1:index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                index += 3
                continue
            out += value[index + 1].encode("utf-8")
            index += 2
            continue
        out += char.encode("utf-8")
        index += 1
    return out.decode("utf-8", errors="replace")


def split_dn(dn: str) -> list[tuple[str, str]]:
    """An LDAP DN -> [(type, unescaped value), ...], first RDN first (multi-valued RDNs kept whole)."""
    parts, current, index = [], [], 0
    while index < len(dn):
        char = dn[index]
        if char == "\\" and index + 1 < len(dn):
            current.append(dn[index:index + 2])
            index += 2
            continue
        if char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if current or parts:
        parts.append("".join(current))
    result = []
    for part in parts:
        kind, _, value = part.partition("=")
        value = value.lstrip()
        if not value.endswith("\\ "):
            value = value.rstrip()
        result.append((kind.strip(), unescape_rdn_value(value)))
    return result


def canonical_name(value) -> str:
    """A directory name (organisation, site, connector) in the one form names are compared in:
    unescaped (give values, not DN text), case folded, and with RFC 4518's insignificant spaces
    gone (leading and trailing removed, inner runs as one), as the directory's caseIgnoreMatch."""
    return " ".join(str(value or "").split()).casefold()


def naming_context_value(context: str, kind: str = "o"):
    """The unescaped value of a one-RDN naming context of type `kind` (``o=Contoso\\, Ltd`` ->
    ``Contoso, Ltd``), or None for any other DN."""
    rdns = split_dn(str(context or ""))
    if len(rdns) == 1 and rdns[0][0].casefold() == kind:
        return rdns[0][1]
    return None


def x500_dn(org: str, site: str, name: str, profile: dict) -> str:
    """The connector's X.500 DN as the MTA writes it in events, upper-case (the profile's
    ``connector_x500`` form; on 5.5 /O=ORG/OU=SITE/CN=CONFIGURATION/CN=CONNECTIONS/CN=NAME)."""
    return profile["dn"]["connector_x500"].format(org=org, site=site, admin_group=site, name=name).upper()


def dn_parts(dn: str) -> dict:
    """{"name", "site", "organization", "parent"} of a 5.5 connector DN (missing parts are "")."""
    rdns = split_dn(dn)
    info = {"name": "", "site": "", "organization": "", "parent": ""}
    if rdns:
        info["name"] = rdns[0][1]
        info["parent"] = dn[_first_separator(dn) + 1:] if _first_separator(dn) >= 0 else ""
    for kind, value in rdns:
        if kind.lower() == "ou" and not info["site"]:
            info["site"] = value
        elif kind.lower() == "o" and not info["organization"]:
            info["organization"] = value
    return info


def _first_separator(dn: str) -> int:
    index = 0
    while index < len(dn):
        if dn[index] == "\\":
            index += 2
            continue
        if dn[index] == ",":
            return index
        index += 1
    return -1
