"""Exchange-version profiles: directory attribute names, syntaxes, encodings, DN forms, counters.

A profile is data, not code: `connectors.py` and `evidence.py` read everything version-specific
from here. One profile per version the KB covers (4.0, 5.0, 5.5): the same directory schema, and
`directory.ldap` says what the server's own directory can do over LDAP (none / read / read-write).

`ASSUMPTIONS` holds, in one place, every item the domain notes (shared/domain/*.md) mark
UNCONFIRMED that the code relies on, plus the project's own decisions about encodings; each is
named, documented in `ASSUMPTION_NOTES`, overridable per run (`get_profile("5.5", {"assumptions":
{...}})`), listed in docs/facts.md, and read by the code (tests/unit/test_facts.py fails on one
that nothing reads).

Logical property entries: {"name": directory attribute, "syntax": int|bool|string|octet|dn|raw,
"multi": bool, "secret": bool, "values": {int: name} for enumerations, "min"/"max" lengths}.

How the Connected-Domains separator travels: the directory returns Connected-Domains as a string
whose field separator is the byte 0xA7. The toolkit treats that byte as the character U+00A7
("\u00a7") everywhere: the runner writes it as the JSON escape ``\\u00a7`` (its output is pure ASCII),
the controller sends it the same way (``json.dumps(ensure_ascii=True)``), and the lab carries it as
U+00A7 in its JSON. Overridable as ASSUMPTIONS["connected_domains_separator"].
"""

from __future__ import annotations

import copy
import functools

# -- every UNCONFIRMED item, by name ---------------------------------------------------------------
ASSUMPTIONS = {
    "n_address_ip_as_text": True,
    "n_address_encoding": "ascii",
    "cost_min": 1,
    "cost_max": 100,
    "counter_instance": "rdn",
    "changes_apply_live": False,
    "connected_domains_separator": "\u00a7",
    "rights_attribute": "allowedAttributesEffective",
    "ldap_size_limit": 100,
    "open_retry_attribute": "Open-Retry-Interval",
    "open_retry_default_seconds": 600,
    "verify_open_retries": 2,
    "event_read_overlap_seconds": 60,
}

ASSUMPTION_NOTES = {
    "n_address_ip_as_text": "An IP Stack address is stored in N-Address as its dotted text in ASCII bytes "
    "(inferred from the host-name case, UNCONFIRMED).",
    "n_address_encoding": "Character encoding of N-Address text (ASCII; 1..50 bytes).",
    "cost_min": "Lowest connector cost accepted (the 1..100 range is UNCONFIRMED).",
    "cost_max": "Highest connector cost accepted (the 1..100 range is UNCONFIRMED).",
    "counter_instance": "Instance name of a connector in 'MSExchangeMTA Connections' counters: 'rdn' = the "
    "connector's directory name (UNCONFIRMED; 'display_name' is the alternative).",
    "changes_apply_live": "Whether schedule/two-way-alternate changes apply without an MTA restart is "
    "UNCONFIRMED: False = every change reports 'MTA restart required'.",
    "connected_domains_separator": "The Connected-Domains field separator (byte 0xA7) as carried in JSON "
    "and Python: the character U+00A7.",
    "rights_attribute": "Constructed attribute read to learn whether the account may modify a connector "
    "(allowedAttributesEffective, as Active Directory serves it; that the 5.5 directory serves it is "
    "UNCONFIRMED). When no entry returns it, write access is reported unknown, not denied.",
    "ldap_size_limit": "The most entries the Exchange directory returns for one search that it does not page "
    "(UNCONFIRMED, 100 taken as the default). Searches are paged with this page size; an answer with exactly "
    "this many entries may have been cut at the limit and is refused (XCON-SEARCH-CAPPED), never read as complete.",
    "open_retry_attribute": "The directory attribute behind the Override page's 'Open interval (sec)' (Q234157: the "
    "time an MTA waits before it reopens a connection after an error): Open-Retry-Interval, in seconds "
    "(the name is the schema's; that it holds that field, in seconds, is UNCONFIRMED).",
    "open_retry_default_seconds": "The open interval an MTA uses when the connector sets none (absent or 0): 600 s, "
    "the Override page's default (Q234157, written for 4.0/5.0; the same on 5.5 is UNCONFIRMED).",
    "verify_open_retries": "How many of the slower side's open intervals a verification watches at least: a refused "
    "caller retries once per interval, so a shorter window can fall between two bursts of refusals (2, the "
    "project's choice).",
    "event_read_overlap_seconds": "How far before the previous read's time (the server's clock) a verification's next "
    "read of that server's events starts: an entry's TimeGenerated is when the MTA submitted it and the event log "
    "service writes it later (usually milliseconds; longer under load), so an entry stamped just before a read may "
    "appear after it. 60 s, the project's choice; entries read twice count once (record number, id and time).",
}

SCHEDULE_STYLES = {0: "never", 1: "selected", 2: "always", 3: "remote"}
ADDRESS_TYPES = {0: "hostname", 1: "ip"}

# Selector logical names (the keys of a normalized connector's "selectors", whatever the version).
SELECTOR_KEYS = ("T-Selector", "S-Selector", "P-Selector", "T-Selector-Inbound", "S-Selector-Inbound", "P-Selector-Inbound")


def octet_attributes(profile):
    """Lower-cased names of the attributes the profile knows as octet strings (their values travel
    as hex text typed as octets: the on-host script never reads the directory schema)."""
    return {entry["name"].lower() for entry in profile["attributes"].values() if entry["syntax"] == "octet"}


def multi_attributes(profile):
    """Names of the attributes the profile knows as multi-valued (a search answers them as lists)."""
    return sorted(entry["name"] for entry in profile["attributes"].values() if entry["multi"])


def _attr(name, syntax, multi=False, secret=False, **extra):
    entry = {"name": name, "syntax": syntax, "multi": multi, "secret": secret}
    entry.update(extra)
    return entry


# -- Exchange 4.0/5.0/5.5 (the KB's versions): LDAP names = schema names with hyphens --------------
_P55_ATTRIBUTES = {
    # On the 5.5 directory `rdn` (Common-Name) is the directory name (the value of `cn=` in the DN)
    # and LDAP `cn` is Display-Name (Q263520: Create(class, "cn=" & alias), then Put "cn", display
    # name). The administrator's display name lives in Admin-Display-Name as well.
    "name": _attr("rdn", "string", max=64),
    "display_name": _attr("cn", "string", max=256),
    "admin_display_name": _attr("Admin-Display-Name", "string", max=256),
    "schedule": _attr("Activation-Style", "int", values=SCHEDULE_STYLES),
    "schedule_grid": _attr("Activation-Schedule", "octet", min=84, max=84),
    "two_way_alternate": _attr("Two-Way-Alternate-Facility", "bool"),
    "stack_address": _attr("N-Address", "octet", min=1, max=50),
    "address_type": _attr("N-Address-Type", "int", values=ADDRESS_TYPES),
    "remote_mta": _attr("Gateway-Local-Desig", "string", max=32),
    "remote_password": _attr("Gateway-Local-Cred", "string", secret=True, max=64),
    "local_mta_name": _attr("MTA-Local-Desig", "string"),
    "local_mta_password": _attr("MTA-Local-Cred", "string", secret=True),
    "routing_list": _attr("Routing-List", "string", multi=True),
    "connected_domains": _attr("Connected-Domains", "string", multi=True),
    "supporting_stack": _attr("Supporting-Stack", "dn", multi=True),
    "home_mta": _attr("Home-MTA", "dn"),
    "delivery_mechanism": _attr("Delivery-Mechanism", "int"),
    "selector_syntax": _attr("X400-Selector-Syntax", "int"),
    "T-Selector": _attr("T-Selector", "octet"),
    "S-Selector": _attr("S-Selector", "octet"),
    "P-Selector": _attr("P-Selector", "octet"),
    "T-Selector-Inbound": _attr("T-Selector-Inbound", "octet"),
    "S-Selector-Inbound": _attr("S-Selector-Inbound", "octet"),
    "P-Selector-Inbound": _attr("P-Selector-Inbound", "octet"),
}

# Attributes of the other property pages (Override, Advanced, Delivery Restrictions, ...): copied
# verbatim when cloning ("identical on every property page"); their values are never interpreted.
_P55_OTHER_PAGES = [
    "Association-Lifetime", "Num-Of-Open-Retries", "Num-Of-Transfer-Retries", "Open-Retry-Interval",
    "Transfer-Retry-Interval", "Transfer-Timeout-Non-Urgent", "Transfer-Timeout-Normal",
    "Transfer-Timeout-Urgent", "Temp-Assoc-Threshold", "RTS-Checkpoint-Size", "RTS-Recovery-Timeout",
    "RTS-Window-Size", "Session-Disconnect-Timer", "Supported-Application-Context",
    "Deliv-Ext-Cont-Types", "Deliv-Cont-Length", "Transport-Expedited-Data", "Encapsulation-Method",
    "Translation-Table-Used", "Line-Wrap", "Local-Initial-Turn", "Admin-Description", "Auth-Orig",
    "Unauth-Orig",
]

PROFILE_55 = {
    "version": "5.5",
    "object_class": "RFC1006-X400-Link",
    "object_classes": ["RFC1006-X400-Link", "X400-Link"],
    "attributes": _P55_ATTRIBUTES,
    "other_page_attributes": _P55_OTHER_PAGES,
    "delivery_mechanism_x400": 3,
    # DN forms; {org} {site} {server} {name} are raw (unescaped) values.
    "dn": {
        "connector": "cn={name},cn=Connections,cn=Configuration,ou={site},o={org}",
        "connections": "cn=Connections,cn=Configuration,ou={site},o={org}",
        "connector_x500": "/o={org}/ou={site}/cn=Configuration/cn=Connections/cn={name}",
        "home_mta": "cn=Microsoft MTA,cn={server},cn=Servers,cn=Configuration,ou={site},o={org}",
        "home_mta_x500": "/o={org}/ou={site}/cn=Configuration/cn=Servers/cn={server}/cn=Microsoft MTA",
        "stack": "cn=TCP ({server}),cn={server},cn=Servers,cn=Configuration,ou={site},o={org}",
        "stack_x500": "/o={org}/ou={site}/cn=Configuration/cn=Servers/cn={server}/cn=TCP ({server})",
    },
    "counters": {
        "queue": "\\\\{server}\\MSExchangeMTA Connections({instance})\\Queue Length",
        "queues": "\\\\{server}\\MSExchangeMTA Connections(*)\\Queue Length",
        "work_queue": "\\\\{server}\\MSExchangeMTA\\Work Queue Length",
    },
    "service": "MSExchangeMTA",
    "event_log": "Application",
    "event_source": "MSExchangeMTA",
    "assumptions": ASSUMPTIONS,
}

# -- Exchange 4.0 and 5.0: the same directory schema, less of it reachable over LDAP --------------
# Platform SDK, "The Exchange Server Directory" (ADSI): 5.5 speaks LDAP v3 (add, modify, delete);
# 5.0's LDAP "was only capable of searching for directory objects and returning attributes"; ADSI
# programs attach to a 5.5 server, and because the servers of a site replicate their directory
# multi-master, one 5.5 server in the site takes the writes and replicates them to its 4.0/5.0
# servers. Exchange 4.0 has no LDAP at all (Q164422: LDAP arrived with 5.0). The MTA, its events,
# counters, registry and service are the same lineage (the KB articles cite the same events on
# 4.0, 5.0 and 5.5), so everything but `directory` is 5.5's.
#   directory.ldap: "none" (no LDAP listener), "read" (search only), "read-write" (LDAP v3).
PROFILE_55["directory"] = {"ldap": "read-write"}
PROFILE_50 = copy.deepcopy(PROFILE_55)
PROFILE_50.update(version="5.0", directory={"ldap": "read"})
PROFILE_40 = copy.deepcopy(PROFILE_55)
PROFILE_40.update(version="4.0", directory={"ldap": "none"})

PROFILES = {"4.0": PROFILE_40, "5.0": PROFILE_50, "5.5": PROFILE_55}
VERSIONS = tuple(PROFILES)
DIRECTORY_ACCESS = ("none", "read", "read-write")


def _merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def get_profile(version="5.5", overrides: dict | None = None) -> dict:
    """A private copy of the profile for `version` ("4.0", "5.0", "5.5": the KB's versions), with
    `overrides` merged in (nested dicts merge; a top-level key naming an assumption sets it)."""
    key = str(version)
    if key not in PROFILES:
        raise ValueError(f"unsupported Exchange version {version!r}; known: {', '.join(VERSIONS)}")
    profile = copy.deepcopy(PROFILES[key])
    for name, value in (overrides or {}).items():
        if name in ASSUMPTIONS:
            profile["assumptions"][name] = value
        elif isinstance(value, dict) and isinstance(profile.get(name), dict):
            unknown = set(value) - set(ASSUMPTIONS) if name == "assumptions" else set()
            if unknown:
                raise ValueError(f"unknown assumptions: {sorted(unknown)}")
            _merge(profile[name], value)
        else:
            profile[name] = copy.deepcopy(value)
    return profile


@functools.lru_cache(maxsize=None)
def shared_profile(version="5.5") -> dict:
    """The profile for `version` without overrides, one object per version: READ-ONLY, never change
    it (take get_profile's private copy to change one).  For reads repeated per link and side (the
    diagnosis, the plan), where a deep copy each time cost a tenth of a second at 100 links."""
    return get_profile(version)


# -- accessors used by connectors.py / evidence.py --------------------------------------------------
def directory_access(profile: dict) -> str:
    """What the server's own directory can do over LDAP: "none", "read" or "read-write"."""
    return profile["directory"]["ldap"]


def can_write_directory(profile: dict) -> bool:
    return directory_access(profile) == "read-write"


def attribute(profile: dict, logical: str) -> str:
    """The directory attribute name of a logical property."""
    return profile["attributes"][logical]["name"]


def property_page_attributes(profile: dict) -> list[str]:
    """Every attribute on the connector's property pages (what a clone copies), in a stable order."""
    names = [entry["name"] for entry in profile["attributes"].values()]
    names += list(profile["other_page_attributes"])
    seen, ordered = set(), []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            ordered.append(name)
    return ordered


def secret_attributes(profile: dict) -> set[str]:
    """Lower-cased names of the attributes that hold secrets."""
    return {e["name"].lower() for e in profile["attributes"].values() if e.get("secret")}


def counter_path(profile: dict, kind: str, server: str, instance: str = "*") -> str:
    """A counter path: kind "queue" (one instance), "queues" (all) or "work_queue"."""
    return profile["counters"][kind].format(server=server, instance=instance)


def restart_required(profile: dict, logical: str) -> bool:
    """Whether changing `logical` needs an MTA restart to take effect (see ASSUMPTIONS)."""
    if logical in ("stack_address", "address_type", "local_mta_name", "local_mta_password", "create", "delete"):
        return True
    return not profile["assumptions"]["changes_apply_live"]
