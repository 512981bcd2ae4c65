"""Raw directory entries <-> the normalized connector (docs/design.md, "Normalized shapes").

* `decode_connector` turns one `dir_search` entry into the normalized connector, secrets masked;
* `encode_changes` turns desired settings into `dir_modify` changes (only what differs);
* `clone_attributes` builds the `dir_create` attributes of a connector identical on every
  property page but name, schedule, Stack address (+type) and cost (KB Q196381 workaround 2);
* DN helpers (RFC 4514 escaping, the connector's DN parts and X.500 DN) are in xcon.dn.

Wire values (JSON): integers, booleans, strings; octet strings as lower-case hex; multi-valued
attributes as lists (a scalar is accepted too). Everything version-specific comes from the profile.
"""

from __future__ import annotations

import re

from xcon import mask as _mask
# The DN helpers live in xcon.dn; their names stay importable from here (callers use both).
from xcon.dn import dn_parts, escape_rdn_value, split_dn, unescape_rdn_value, x500_dn  # noqa: F401
from xcon.profile import SELECTOR_KEYS, property_page_attributes, restart_required, secret_attributes

MASK = _mask.MASK


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


def raw_attribute(attributes: dict, name: str, default=None):
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
        return raw_attribute(attrs, spec[logical]["name"], default)

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
        value = raw_attribute(attrs, attr_name)
        if value is not None:
            page_attrs[attr_name] = value
    return {
        "name": name,
        "dn": entry.get("dn", ""),
        "x500_dn": x500_dn(parts["organization"], parts["site"], name, profile),
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


def op_restart_required(op: dict, profile: dict) -> bool:
    """Whether a directory write (dir_create / dir_delete / dir_modify op) needs an MTA restart to
    take effect: the profile decides per logical property (profile.restart_required)."""
    kind = {"dir_create": "create", "dir_delete": "delete"}.get(op.get("op"))
    if kind:
        return restart_required(profile, kind)
    logical = {entry["name"].lower(): name for name, entry in profile["attributes"].items()}
    changed = {logical.get(str(c.get("attribute")).lower(), "other") for c in (op.get("params") or {}).get("changes") or []}
    return any(restart_required(profile, name) for name in changed)


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
        return _as_scalar(raw_attribute(attrs, spec[logical]["name"]))

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
        domains = [str(v) for v in _as_list(raw_attribute(attrs, spec["connected_domains"]["name"]))]
        routes = [str(v) for v in _as_list(raw_attribute(attrs, spec["routing_list"]["name"]))]
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
        value = raw_attribute(attrs, attr_name)
        if value is not None and value != [] and value != "":
            out[attr_name] = value
    out[spec["display_name"]["name"]] = display_name
    out[spec["admin_display_name"]["name"]] = display_name
    out[spec["schedule"]["name"]] = _enum_value(spec["schedule"], schedule)
    out[spec["stack_address"]["name"]] = encode_stack_address(stack_address, profile)
    out[spec["address_type"]["name"]] = _enum_value(spec["address_type"], address_type)
    domains, routes = rewrite_costs(raw_attribute(attrs, spec["connected_domains"]["name"]),
                                    raw_attribute(attrs, spec["routing_list"]["name"]), cost, profile)
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
