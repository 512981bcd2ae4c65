"""Raw directory entries <-> the normalized connector (docs/design.md, "Normalized shapes").

* `decode_connector` turns one `dir_search` entry into the normalized connector, secrets masked;
* `encode_changes` turns desired settings into `dir_modify` changes (only what differs);
* `clone_attributes` builds the `dir_create` attributes of a connector identical on every
  property page but name, schedule, Stack address (+type) and cost (KB Q196381 workaround 2);
* DN helpers: RFC 4514 escaping, the LDAP and X.500 connector DNs.

Wire values (JSON): integers, booleans, strings; octet strings as lower-case hex; multi-valued
attributes as lists (a scalar is accepted too). Everything version-specific comes from the profile.
"""

from __future__ import annotations

import re

from xcon import mask as _mask
from xcon.profile import SELECTOR_KEYS, attribute, property_page_attributes, secret_attributes

MASK = _mask.MASK

# -- DN helpers ---------------------------------------------------------------------------------
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


def connector_dn(org: str, site: str, name: str, profile: dict | None = None, **extra) -> str:
    """LDAP DN of a connector: cn=NAME,cn=Connections,cn=Configuration,ou=SITE,o=ORG (5.5 form)."""
    template = (profile or {}).get("dn", {}).get("connector", "cn={name},cn=Connections,cn=Configuration,ou={site},o={org}")
    values = {k: escape_rdn_value(str(v)) for k, v in dict(extra, org=org, site=site, name=name).items() if k != "domain"}
    if "domain" in extra:
        values["domain"] = extra["domain"]
    return template.format(**values)


def x500_dn(org: str, site: str, name: str) -> str:
    """The connector's X.500 DN as the MTA writes it in events: upper-case
    /O=ORG/OU=SITE/CN=CONFIGURATION/CN=CONNECTIONS/CN=NAME."""
    return f"/o={org}/ou={site}/cn=Configuration/cn=Connections/cn={name}".upper()


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


# -- value codecs -------------------------------------------------------------------------------
def text_to_hex(text: str, encoding: str = "ascii") -> str:
    return text.encode(encoding).hex()


def hex_to_text(value: str, encoding: str = "ascii") -> str:
    try:
        return bytes.fromhex(value or "").decode(encoding)
    except (ValueError, UnicodeDecodeError):
        return bytes.fromhex(value or "").decode("latin-1") if _is_hex(value) else str(value)


def _is_ip_literal(text) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(str(text).strip())
        return True
    except ValueError:
        return False


def _is_hex(value) -> bool:
    return isinstance(value, str) and len(value) % 2 == 0 and re.fullmatch(r"[0-9A-Fa-f]*", value) is not None


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _as_scalar(value):
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


# -- the schedule grid -----------------------------------------------------------------------------
SCHEDULE_BYTES = 84
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def schedule_times(grid_hex) -> list[dict] | None:
    """Activation-Schedule (PR_EMS_AB_ACTIVATION_SCHEDULE) -> the active periods of the week, GMT.

    The layout is documented: 84 bytes, one byte per two hours, high bit first, from Sunday 00:00
    GMT; 84 x 8 = 672 bits = 7 days x 96 quarter hours, so bit ``0x80 >> (q % 8)`` of byte ``q // 8``
    is quarter hour ``q`` of the week. Adjacent quarter hours are merged (a period may run past
    midnight into the next day). Returns ``[{"day", "start", "end", "text"}, ...]`` with times HH:MM
    (end "24:00" at a day's end), or None when the value is not 84 bytes of hex."""
    if not _is_hex(grid_hex) or len(grid_hex) != 2 * SCHEDULE_BYTES:
        return None
    data = bytes.fromhex(grid_hex)
    active = [bool(data[q // 8] & (0x80 >> (q % 8))) for q in range(8 * SCHEDULE_BYTES)]
    periods, q = [], 0
    while q < len(active):
        if not active[q]:
            q += 1
            continue
        start = q
        while q < len(active) and active[q]:
            q += 1
        periods.append((start, q))
    def clock(quarter):
        return f"{(quarter % 96) // 4:02d}:{(quarter % 4) * 15:02d}"

    out = []
    for start, end in periods:
        day = WEEKDAYS[start // 96]
        if end - start == len(active):
            out.append({"day": day, "start": "00:00", "end": "24:00", "text": "the whole week"})
        elif (end - 1) // 96 == start // 96:
            finish = "24:00" if end % 96 == 0 else clock(end)
            out.append({"day": day, "start": clock(start), "end": finish, "text": f"{day} {clock(start)}-{finish} GMT"})
        else:
            text = f"{day} {clock(start)} - {WEEKDAYS[(end // 96) % 7]} {clock(end)} GMT"
            out.append({"day": day, "start": clock(start), "end": clock(end), "text": text})
    return out


def _get(attributes: dict, name: str, default=None):
    """Case-insensitive attribute lookup (LDAP names are case-insensitive)."""
    if name in attributes:
        return attributes[name]
    lowered = name.lower()
    for key, value in attributes.items():
        if key.lower() == lowered:
            return value
    return default


# -- cost fields ----------------------------------------------------------------------------------
def split_connected_domain(value: str, profile: dict) -> tuple[str, str, int | None, str]:
    """ORG§SITE§cost§ADDRESS -> (org, site, cost, address)."""
    sep = profile["assumptions"]["connected_domains_separator"]
    fields = value.split(sep, 3)
    while len(fields) < 4:
        fields.append("")
    try:
        cost = int(fields[2])
    except ValueError:
        cost = None
    return fields[0], fields[1], cost, fields[3]


def join_connected_domain(org: str, site: str, cost: int, address: str, profile: dict) -> str:
    sep = profile["assumptions"]["connected_domains_separator"]
    return sep.join([org, site, str(cost), address])


def split_routing_entry(value: str) -> tuple[str, int | None]:
    """TYPE:address;cost -> (TYPE:address, cost). The X.400 address ends in ';', hence ';;cost'."""
    address, sep, cost = value.rpartition(";")
    if not sep:
        return value, None
    try:
        return address, int(cost)
    except ValueError:
        return value, None


def rewrite_costs(connected_domains, routing_list, cost: int, profile: dict) -> tuple[list, list]:
    """Both lists with the cost field of every entry set to `cost` (entries without one kept)."""
    new_domains = []
    for entry in _as_list(connected_domains):
        org, site, old, address = split_connected_domain(entry, profile)
        new_domains.append(entry if old is None else join_connected_domain(org, site, cost, address, profile))
    new_routes = []
    for entry in _as_list(routing_list):
        address, old = split_routing_entry(entry)
        new_routes.append(entry if old is None else f"{address};{cost}")
    return new_domains, new_routes


def connector_cost(connected_domains, routing_list, profile: dict) -> int | None:
    """The connector's cost: the lowest cost over its Connected-Domains and Routing-List entries."""
    costs = [split_connected_domain(e, profile)[2] for e in _as_list(connected_domains)]
    costs += [split_routing_entry(e)[1] for e in _as_list(routing_list)]
    costs = [c for c in costs if c is not None]
    return min(costs) if costs else None


# -- masking --------------------------------------------------------------------------------------
def mask(obj, profile: dict | None = None):
    """A copy of obj with secrets masked: secret-named keys (password, cred, ...) and the
    profile's secret attributes (Gateway-Local-Cred, MTA-Local-Cred, ...) anywhere in it."""
    secret_names = secret_attributes(profile) if profile else set()

    def walk(value):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if isinstance(key, str) and key.lower() in secret_names and item not in (None, "", []):
                    out[key] = MASK
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v) for v in value)
        return value

    return _mask.mask(walk(obj))


# -- decode ---------------------------------------------------------------------------------------
def _enum_name(entry: dict, raw):
    value = _as_scalar(raw)
    if value is None:
        return None
    try:
        return entry["values"].get(int(value), f"unknown({value})")
    except (TypeError, ValueError):
        return str(value)


def decode_connector(entry: dict, server: str, profile: dict) -> dict:
    """One dir_search entry -> the normalized connector (secrets masked as "********")."""
    attrs = entry.get("attributes") or {}
    spec = profile["attributes"]

    def raw(logical, default=None):
        return _get(attrs, spec[logical]["name"], default)

    parts = dn_parts(entry.get("dn", ""))
    name = parts["name"] or str(_as_scalar(raw("name")) or "")
    encoding = profile["assumptions"]["n_address_encoding"]
    connected = [str(v) for v in _as_list(raw("connected_domains"))]
    routes = [str(v) for v in _as_list(raw("routing_list"))]
    address_type = _enum_name(spec["address_type"], raw("address_type"))
    stack_hex = _as_scalar(raw("stack_address"))
    remote_password = _as_scalar(raw("remote_password"))
    local_password = _as_scalar(raw("local_mta_password"))
    page_attrs = {}
    for attr_name in property_page_attributes(profile):
        value = _get(attrs, attr_name)
        if value is not None:
            page_attrs[attr_name] = value
    return {
        "name": name,
        "dn": entry.get("dn", ""),
        "x500_dn": x500_dn(parts["organization"], parts["site"], name),
        "server": server,
        "site": parts["site"],
        "organization": parts["organization"],
        "display_name": str(_as_scalar(raw("display_name")) or _as_scalar(raw("admin_display_name")) or name),
        "schedule": _enum_name(spec["schedule"], raw("schedule")),
        "schedule_grid": str(_as_scalar(raw("schedule_grid")) or ""),
        "schedule_times": schedule_times(str(_as_scalar(raw("schedule_grid")) or "")),
        "two_way_alternate": _as_bool(_as_scalar(raw("two_way_alternate", False))),
        "stack_address": hex_to_text(stack_hex, encoding) if stack_hex else "",
        "address_type": address_type,
        # A host-name Stack address as the Windows host's resolver answered it (dir_search resolve)
        "stack_resolved": list((entry.get("resolved") or {}).get("addresses") or []),
        "stack_resolve_error": (entry.get("resolved") or {}).get("error"),
        "remote_mta": str(_as_scalar(raw("remote_mta")) or ""),
        "remote_password": MASK if remote_password else "",
        "cost": connector_cost(connected, routes, profile),
        "connected_domains": connected,
        "routing_list": routes,
        "selectors": {key: str(_as_scalar(raw(key)) or "") for key in SELECTOR_KEYS},
        "override": {
            "local_mta_name": str(_as_scalar(raw("local_mta_name")) or ""),
            "local_mta_password": MASK if local_password else "",
        },
        "attributes": mask(page_attrs, profile),
    }


# -- encode ---------------------------------------------------------------------------------------
def _replace(name, values):
    return {"attribute": name, "action": "replace", "values": list(values)}


def _check_cost(cost, profile):
    low, high = profile["assumptions"]["cost_min"], profile["assumptions"]["cost_max"]
    if not isinstance(cost, int) or isinstance(cost, bool) or not low <= cost <= high:
        raise ValueError(f"cost must be an integer {low}..{high}, not {cost!r}")


def encode_stack_address(address: str, profile: dict) -> str:
    """Stack address text -> N-Address hex (ASCII bytes), length-checked."""
    spec = profile["attributes"]["stack_address"]
    if not profile["assumptions"]["n_address_ip_as_text"] and _is_ip_literal(address):
        raise ValueError(f"stack address {address!r}: with n_address_ip_as_text false no other IP encoding of "
                         "N-Address is known; write it as a host name")
    try:
        value = text_to_hex(address, profile["assumptions"]["n_address_encoding"])
    except UnicodeEncodeError as exc:
        raise ValueError(f"stack address {address!r} is not ASCII") from exc
    if not spec.get("min", 1) <= len(value) // 2 <= spec.get("max", 50):
        raise ValueError(f"stack address {address!r} must be {spec.get('min', 1)}..{spec.get('max', 50)} bytes")
    return value


def _enum_value(entry: dict, name: str) -> int:
    for number, label in entry["values"].items():
        if label == name:
            return number
    raise ValueError(f"{entry['name']}: {name!r} is not one of {sorted(entry['values'].values())}")


def encode_changes(desired: dict, current_entry: dict, profile: dict) -> list[dict]:
    """dir_modify changes that bring `current_entry` to `desired` (only what differs).

    desired keys (all optional): schedule (always|never|selected|remote), two_way_alternate (bool),
    stack_address (text), address_type (ip|hostname), cost (int; rewrites the cost field of every
    Connected-Domains AND Routing-List entry), display_name, remote_password.
    """
    attrs = (current_entry or {}).get("attributes") or {}
    spec = profile["attributes"]
    changes = []

    def current(logical):
        return _as_scalar(_get(attrs, spec[logical]["name"]))

    if desired.get("schedule") is not None:
        value = _enum_value(spec["schedule"], desired["schedule"])
        if current("schedule") is None or int(current("schedule")) != value:
            changes.append(_replace(spec["schedule"]["name"], [value]))
    if desired.get("two_way_alternate") is not None:
        value = bool(desired["two_way_alternate"])
        if current("two_way_alternate") is None or _as_bool(current("two_way_alternate")) != value:
            changes.append(_replace(spec["two_way_alternate"]["name"], [value]))
    if desired.get("stack_address") is not None:
        value = encode_stack_address(desired["stack_address"], profile)
        if str(current("stack_address") or "").lower() != value:
            changes.append(_replace(spec["stack_address"]["name"], [value]))
    if desired.get("address_type") is not None:
        value = _enum_value(spec["address_type"], desired["address_type"])
        if current("address_type") is None or int(current("address_type")) != value:
            changes.append(_replace(spec["address_type"]["name"], [value]))
    if desired.get("display_name") is not None and current("display_name") != desired["display_name"]:
        changes.append(_replace(spec["display_name"]["name"], [desired["display_name"]]))
    if desired.get("remote_password") is not None and current("remote_password") != desired["remote_password"]:
        changes.append(_replace(spec["remote_password"]["name"], [desired["remote_password"]]))
    if desired.get("cost") is not None:
        _check_cost(desired["cost"], profile)
        domains = [str(v) for v in _as_list(_get(attrs, spec["connected_domains"]["name"]))]
        routes = [str(v) for v in _as_list(_get(attrs, spec["routing_list"]["name"]))]
        new_domains, new_routes = rewrite_costs(domains, routes, desired["cost"], profile)
        if new_domains != domains:
            changes.append(_replace(spec["connected_domains"]["name"], new_domains))
        if new_routes != routes:
            changes.append(_replace(spec["routing_list"]["name"], new_routes))
    return changes


# -- clone ----------------------------------------------------------------------------------------
def clone_attributes(entry: dict, profile: dict, name: str, display_name: str, stack_address: str,
                     address_type: str, cost: int = 99, schedule: str = "remote",
                     remote_password: str | None = None, home_mta: str | None = None) -> dict:
    """dir_create attributes of a new connector identical to `entry` on every property page except:
    the name (the directory name `rdn`, set by the RDN of dir_create) and display name (`cn` =
    Display-Name, and Admin-Display-Name), the schedule (Activation-Style), the Stack address
    (N-Address + N-Address-Type) and the cost field of every Connected-Domains / Routing-List entry.

    `entry` must be the raw (unmasked) dir_search entry. `remote_password` supplies
    Gateway-Local-Cred when the directory did not return it; `home_mta` supplies Home-MTA when
    absent. Delivery-Mechanism defaults to 3 (X.400 link)."""
    attrs = entry.get("attributes") or {}
    spec = profile["attributes"]
    _check_cost(cost, profile)
    replaced = {spec[k]["name"].lower() for k in ("name", "display_name", "admin_display_name", "schedule",
                                                   "stack_address", "address_type", "connected_domains",
                                                   "routing_list")}
    out = {}
    for attr_name in property_page_attributes(profile):
        if attr_name.lower() in replaced:
            continue
        value = _get(attrs, attr_name)
        if value is not None and value != [] and value != "":
            out[attr_name] = value
    out[spec["display_name"]["name"]] = display_name
    out[spec["admin_display_name"]["name"]] = display_name
    out[spec["schedule"]["name"]] = _enum_value(spec["schedule"], schedule)
    out[spec["stack_address"]["name"]] = encode_stack_address(stack_address, profile)
    out[spec["address_type"]["name"]] = _enum_value(spec["address_type"], address_type)
    domains, routes = rewrite_costs(_get(attrs, spec["connected_domains"]["name"]),
                                    _get(attrs, spec["routing_list"]["name"]), cost, profile)
    if domains:
        out[spec["connected_domains"]["name"]] = domains
    if routes:
        out[spec["routing_list"]["name"]] = routes
    out.setdefault(spec["delivery_mechanism"]["name"], profile["delivery_mechanism_x400"])
    if remote_password is not None:
        out[spec["remote_password"]["name"]] = remote_password
    if spec["home_mta"]["name"] not in out:
        if not home_mta:
            raise ValueError(f"{entry.get('dn')}: Home-MTA not returned; pass home_mta")
        out[spec["home_mta"]["name"]] = home_mta
    del name  # the name is the RDN of dir_create (see create_params), not an attribute
    return out


def create_params(server: str, source_dn: str, name: str, attributes: dict, profile: dict) -> dict:
    """dir_create params for a connector `name` beside the connector `source_dn`."""
    return {"server": server, "parent": dn_parts(source_dn)["parent"], "cn": name,
            "class": profile["object_class"], "attributes": attributes}


def search_params(server: str, profile: dict, base: str = "", scope: str = "subtree") -> dict:
    """dir_search params that read every connector with every property-page attribute."""
    return {"server": server, "base": base, "scope": scope, "classes": [profile["object_class"]],
            "attributes": property_page_attributes(profile)}
