"""The emulated Exchange 5.5 directory schema: DNs, object classes, attributes, value syntaxes.

Pure data plus small codecs, used by ``directory.py`` (the directory itself) and ``model.py``.

* DNs: LDAP form with RFC 4514 escaping (``cn=NAME,cn=Connections,cn=Configuration,ou=SITE,o=ORG``)
  and the X.500 form the MTA writes in its events (``/O=ORG/OU=SITE/CN=CONFIGURATION/...``).
  A parsed DN is a tuple of ``(type, value)`` RDNs, most specific first, types lower-case
  (``dn.py``, re-exported here).
* Attributes: :data:`ATTRIBUTES` maps the canonical (LDAP = schema) name to an :class:`AttrDef`
  (syntax, single/multi, ranges/lengths, operational, secret). Names are case-insensitive.
* Classes: :data:`CLASSES` with superclass, RDN type, mandatory/optional attributes and the classes
  an object may be created under.
* Errors: :class:`DirectoryError` carries the ADSI category and HRESULT of docs/design.md (``dn.py``).

Values travel as JSON (docs/design.md): integers as numbers, booleans as true/false, strings as
strings, octet strings as lower-case hex, DNs as LDAP-form strings; multi-valued attributes as
lists. Inside the directory a value is an ``int``, ``bool``, ``str``, ``bytes`` or a DN tuple.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

from .dn import (  # noqa: F401  (the schema's DN helpers and error, re-exported)
    _HEX, HRESULT_BAD_DN, HRESULTS, RDN_TYPES, DirectoryError, Dn, Rdn, dn_key, escape_value, format_dn, is_under,
    parse_any_dn, parse_dn, parse_x500, x500_upper)


# -- attributes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttrDef:
    """One attribute of the schema.

    syntax: ``integer`` (min/max values), ``boolean``, ``string`` (min/max characters), ``octet``
    (min/max bytes), ``dn``. ``operational``: returned by a search only when named. ``secret``:
    never shown in snapshots; returned only to an account with admin rights."""

    name: str
    syntax: str
    multi: bool = False
    min: Optional[int] = None
    max: Optional[int] = None
    operational: bool = False
    secret: bool = False
    system: bool = False      # set by the directory only (objectClass)


def _a(name, syntax, **kw) -> AttrDef:
    return AttrDef(name, syntax, **kw)


_INT32 = 2 ** 31 - 1
# Operational = the X.400 link attributes (readable by authenticated LDAP only when named).
_OP = {"operational": True}

ATTRIBUTE_LIST: List[AttrDef] = [
    _a("objectClass", "string", multi=True, system=True),
    # Exchange 5.5 over LDAP: `rdn` is Common-Name, the directory name an object is named by (the
    # value after `cn=` in its DN); `cn` is Display-Name (Q263520 creates a list with
    # Create(class, "cn=" & alias) and then Put "cn", DisplayName; shared real-world-facts.md).
    _a("rdn", "string", min=1, max=64),
    _a("cn", "string", max=256),
    _a("o", "string", min=1, max=64),
    _a("ou", "string", min=1, max=64),
    _a("Admin-Display-Name", "string", max=256),
    _a("Admin-Description", "string", max=1024),
    _a("Computer-Name", "string", max=15),
    _a("Network-Address", "string", multi=True, max=256),
    _a("Delivery-Mechanism", "integer", min=0, max=3),
    _a("Home-MTA", "dn"),
    _a("Routing-List", "string", multi=True, max=1024),
    _a("Auth-Orig", "dn", multi=True),
    _a("Unauth-Orig", "dn", multi=True),
    _a("Deliv-Cont-Length", "integer", min=0, max=_INT32),
    # X.400 link (Schedule, Stack, Override, Connected Sites, Advanced pages)
    _a("Activation-Style", "integer", min=0, max=3, **_OP),
    _a("Activation-Schedule", "octet", min=84, max=84, **_OP),
    _a("Two-Way-Alternate-Facility", "boolean", **_OP),
    _a("N-Address", "octet", min=1, max=50, **_OP),
    _a("N-Address-Type", "integer", min=0, max=1, **_OP),
    _a("X400-Selector-Syntax", "integer", min=0, max=1, **_OP),
    _a("T-Selector", "octet", min=0, max=32, **_OP),
    _a("S-Selector", "octet", min=0, max=32, **_OP),
    _a("P-Selector", "octet", min=0, max=32, **_OP),
    _a("T-Selector-Inbound", "octet", min=0, max=32, **_OP),
    _a("S-Selector-Inbound", "octet", min=0, max=32, **_OP),
    _a("P-Selector-Inbound", "octet", min=0, max=32, **_OP),
    _a("Gateway-Local-Desig", "string", max=32, **_OP),
    _a("Gateway-Local-Cred", "string", max=64, secret=True, **_OP),
    _a("MTA-Local-Desig", "string", max=32, **_OP),
    _a("MTA-Local-Cred", "string", max=64, secret=True, **_OP),
    _a("Connected-Domains", "string", multi=True, max=1024, **_OP),
    _a("Supporting-Stack", "dn", multi=True, **_OP),
    _a("Association-Lifetime", "integer", min=0, max=_INT32, **_OP),
    _a("Num-Of-Open-Retries", "integer", min=0, max=_INT32, **_OP),
    _a("Num-Of-Transfer-Retries", "integer", min=0, max=_INT32, **_OP),
    _a("Open-Retry-Interval", "integer", min=0, max=_INT32, **_OP),
    _a("Transfer-Retry-Interval", "integer", min=0, max=_INT32, **_OP),
    _a("Transfer-Timeout-Non-Urgent", "integer", min=0, max=_INT32, **_OP),
    _a("Transfer-Timeout-Normal", "integer", min=0, max=_INT32, **_OP),
    _a("Transfer-Timeout-Urgent", "integer", min=0, max=_INT32, **_OP),
    _a("Temp-Assoc-Threshold", "integer", min=0, max=_INT32, **_OP),
    _a("RTS-Checkpoint-Size", "integer", min=0, max=_INT32, **_OP),
    _a("RTS-Recovery-Timeout", "integer", min=0, max=_INT32, **_OP),
    _a("RTS-Window-Size", "integer", min=0, max=_INT32, **_OP),
    _a("Session-Disconnect-Timer", "integer", min=0, max=_INT32, **_OP),
    _a("Supported-Application-Context", "octet", multi=True, min=1, max=64, **_OP),
    _a("Deliv-Ext-Cont-Types", "octet", multi=True, min=1, max=64, **_OP),
    _a("Transport-Expedited-Data", "boolean", **_OP),
    _a("Encapsulation-Method", "integer", min=0, max=1, **_OP),
    _a("Translation-Table-Used", "integer", min=0, max=_INT32, **_OP),
    _a("Line-Wrap", "integer", min=0, max=_INT32, **_OP),
    _a("Local-Initial-Turn", "boolean", **_OP),
]
ATTRIBUTES: Dict[str, AttrDef] = {a.name.lower(): a for a in ATTRIBUTE_LIST}
# schema (ldapDisplayName-less) aliases that ADSI also accepts
ALIASES = {"common-name": "rdn", "display-name": "cn", "organization-name": "o",
           "organizational-unit-name": "ou", "object-class": "objectclass"}


def naming_attribute(rdn_type: str) -> str:
    """The attribute holding an object's name for the RDN type of its DN: `cn=` names `rdn`
    (Common-Name); `o=` and `ou=` name themselves."""
    return "rdn" if rdn_type.lower() == "cn" else rdn_type.lower()


def attribute(name: str) -> Optional[AttrDef]:
    """The attribute definition for a (case-insensitive) name or alias, None when unknown."""
    if not isinstance(name, str):
        return None
    key = name.lower()
    return ATTRIBUTES.get(ALIASES.get(key, key))


def require_attribute(name: str) -> AttrDef:
    found = attribute(name)
    if found is None:
        raise DirectoryError("UndefinedAttribute", f"The attribute '{name}' is not defined in the schema "
                             "(The specified directory service attribute or value does not exist).")
    return found


# Defaults of a connector's property pages as the Exchange Administrator creates them (the lab's
# topology loader uses them; ``dir_create`` does not invent values).
CONNECTOR_DEFAULTS: Dict[str, Any] = {
    "Association-Lifetime": 300,
    "Num-Of-Open-Retries": 144,
    "Num-Of-Transfer-Retries": 2,
    "Open-Retry-Interval": 600,
    "Transfer-Retry-Interval": 120,
    "Transfer-Timeout-Non-Urgent": 1000,
    "Transfer-Timeout-Normal": 500,
    "Transfer-Timeout-Urgent": 250,
    "Temp-Assoc-Threshold": 10,
    "RTS-Checkpoint-Size": 30,
    "RTS-Recovery-Timeout": 60,
    "RTS-Window-Size": 5,
    "Session-Disconnect-Timer": 120,
    "Transport-Expedited-Data": False,
    "Encapsulation-Method": 1,
    "Translation-Table-Used": 0,
    "Line-Wrap": 0,
    "Local-Initial-Turn": False,
    "X400-Selector-Syntax": 0,
    "Deliv-Cont-Length": 0,
}


# -- classes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassDef:
    name: str
    superclass: Optional[str]
    rdn: str = "cn"           # the RDN type in the DN (the value is stored in naming_attribute(rdn))
    mandatory: FrozenSet[str] = frozenset()
    optional: FrozenSet[str] = frozenset()
    superiors: FrozenSet[str] = frozenset()   # classes it may be created under
    creatable: bool = True


def _names(*names: str) -> FrozenSet[str]:
    return frozenset(n.lower() for n in names)


_LINK_OPTIONAL = _names(*[a.name for a in ATTRIBUTE_LIST if a.operational]) | _names(
    "cn", "Admin-Display-Name", "Admin-Description", "Routing-List", "Auth-Orig", "Unauth-Orig",
    "Deliv-Cont-Length")

CLASS_LIST: List[ClassDef] = [
    ClassDef("top", None, mandatory=_names("objectClass"), creatable=False),
    ClassDef("Organization", "top", rdn="o", mandatory=_names("o"),
             optional=_names("cn", "Admin-Display-Name", "Admin-Description"), creatable=False),
    ClassDef("Organizational-Unit", "top", rdn="ou", mandatory=_names("ou"),
             optional=_names("cn", "Admin-Display-Name", "Admin-Description"), superiors=_names("Organization"),
             creatable=False),
    ClassDef("Container", "top", mandatory=_names("rdn"),
             optional=_names("cn", "Admin-Display-Name", "Admin-Description"),
             superiors=_names("Organizational-Unit", "Container")),
    ClassDef("Computer", "top", mandatory=_names("rdn"),
             optional=_names("cn", "Admin-Display-Name", "Admin-Description", "Computer-Name", "Network-Address"),
             superiors=_names("Container"), creatable=False),
    ClassDef("MTA", "top", mandatory=_names("rdn"),
             optional=_names("cn", "Admin-Display-Name", "MTA-Local-Desig", "MTA-Local-Cred",
                             "Association-Lifetime", "Session-Disconnect-Timer"),
             superiors=_names("Computer"), creatable=False),
    ClassDef("RFC1006-Stack", "top", mandatory=_names("rdn"),
             optional=_names("cn", "Admin-Display-Name", "N-Address", "N-Address-Type", "T-Selector",
                             "S-Selector", "P-Selector", "X400-Selector-Syntax"),
             superiors=_names("Computer"), creatable=False),
    ClassDef("Mail-Gateway", "top", mandatory=_names("rdn", "Delivery-Mechanism"),
             optional=_names("cn", "Admin-Display-Name", "Admin-Description", "Routing-List", "Home-MTA"),
             creatable=False),
    ClassDef("X400-Link", "Mail-Gateway", mandatory=_names("Home-MTA"), optional=_LINK_OPTIONAL,
             creatable=False),
    ClassDef("RFC1006-X400-Link", "X400-Link", optional=_LINK_OPTIONAL, superiors=_names("Container")),
]
CLASSES: Dict[str, ClassDef] = {c.name.lower(): c for c in CLASS_LIST}


def class_chain(name: str) -> List[str]:
    """``RFC1006-X400-Link`` -> ``["top", "Mail-Gateway", "X400-Link", "RFC1006-X400-Link"]``."""
    chain = []
    current: Optional[ClassDef] = CLASSES.get(name.lower())
    while current is not None:
        chain.append(current.name)
        current = CLASSES.get(current.superclass.lower()) if current.superclass else None
    return list(reversed(chain))


def allowed_attributes(chain: Sequence[str]) -> Tuple[FrozenSet[str], FrozenSet[str]]:
    """(mandatory, mandatory|optional) lower-case attribute names of a class chain."""
    mandatory: set = set()
    allowed: set = set()
    for name in chain:
        definition = CLASSES[name.lower()]
        mandatory |= definition.mandatory
        allowed |= definition.mandatory | definition.optional
    return frozenset(mandatory), frozenset(allowed)


# -- value codecs -------------------------------------------------------------------------------
def _syntax_error(attr: AttrDef, value: Any, expected: str) -> DirectoryError:
    return DirectoryError("InvalidSyntax", f"{attr.name}: {value!r} is not {expected} "
                          "(An invalid directory pathname was passed / invalid attribute syntax).")


def _constraint(attr: AttrDef, message: str) -> DirectoryError:
    return DirectoryError("ConstraintViolation", f"{attr.name}: {message} (A constraint violation "
                          "occurred.)")


def decode_value(attr: AttrDef, value: Any) -> Any:
    """One JSON value -> the stored value, syntax- and range-checked."""
    if attr.syntax == "integer":
        if isinstance(value, bool):
            raise _syntax_error(attr, value, "an integer")
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if not isinstance(value, int):
            raise _syntax_error(attr, value, "an integer")
        if (attr.min is not None and value < attr.min) or (attr.max is not None and value > attr.max):
            raise _constraint(attr, f"{value} is outside {attr.min}..{attr.max}")
        return value
    if attr.syntax == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().upper() in ("TRUE", "FALSE"):
            return value.strip().upper() == "TRUE"
        raise _syntax_error(attr, value, "a boolean")
    if attr.syntax == "string":
        if not isinstance(value, str):
            raise _syntax_error(attr, value, "a string")
        if attr.max is not None and len(value) > attr.max:
            raise _constraint(attr, f"{len(value)} characters, at most {attr.max} allowed")
        if attr.min is not None and len(value) < attr.min:
            raise _constraint(attr, f"{len(value)} characters, at least {attr.min} needed")
        return value
    if attr.syntax == "octet":
        if not isinstance(value, str) or len(value) % 2 or any(c not in _HEX for c in value):
            raise _syntax_error(attr, value, "an octet string as hex text")
        data = bytes.fromhex(value)
        if (attr.min is not None and len(data) < attr.min) or (attr.max is not None and len(data) > attr.max):
            exact = attr.min == attr.max
            want = f"exactly {attr.min}" if exact else f"{attr.min}..{attr.max}"
            raise _constraint(attr, f"{len(data)} bytes, {want} bytes allowed")
        return data
    if attr.syntax == "dn":
        if not isinstance(value, str):
            raise _syntax_error(attr, value, "a distinguished name")
        try:
            dn = parse_any_dn(value)
        except DirectoryError:
            raise _syntax_error(attr, value, "a distinguished name") from None
        if not dn:
            raise _syntax_error(attr, value, "a distinguished name")
        return dn
    raise AssertionError(attr.syntax)


def encode_value(attr: AttrDef, value: Any) -> Any:
    """One stored value -> JSON (octet strings as lower-case hex, DNs in LDAP form)."""
    if attr.syntax == "octet":
        return value.hex()
    if attr.syntax == "dn":
        return format_dn(value)
    return value


def values_equal(attr: AttrDef, left: Any, right: Any) -> bool:
    if attr.syntax == "dn":
        return dn_key(left) == dn_key(right)
    if attr.syntax == "string":
        return left.casefold() == right.casefold()
    return left == right


# -- the schedule grid --------------------------------------------------------------------------
# Activation-Schedule (PR_EMS_AB_ACTIVATION_SCHEDULE): 84 bytes, one byte per two hours, high bit
# first, from Sunday 00:00 GMT (shared real-world-facts.md). 84 bytes x 8 bits = 672 quarter hours =
# 7 days x 96; so each bit is one quarter hour and byte b covers hours 2b..2b+2 of the week.
SCHEDULE_BYTES = 84
SLOTS_PER_DAY = 96


def schedule_slot(weekday_sunday0: int, hour: int, minute: int) -> int:
    """Quarter hour of the week (0 = Sunday 00:00-00:15 GMT) of a GMT time."""
    return weekday_sunday0 * SLOTS_PER_DAY + hour * 4 + minute // 15


def slot_active(grid: bytes, slot: int) -> bool:
    """Whether quarter hour ``slot`` is set: bit ``0x80 >> (slot % 8)`` of byte ``slot // 8``."""
    if len(grid) != SCHEDULE_BYTES:
        return False
    return bool(grid[slot // 8] & (0x80 >> (slot % 8)))


def grid_from_slots(slots) -> bytes:
    data = bytearray(SCHEDULE_BYTES)
    for slot in slots:
        data[slot // 8] |= 0x80 >> (slot % 8)
    return bytes(data)
