"""MSExchangeMTA events, counters and service state -> the evidence shape (docs/design.md).

The event texts parsed here are the ones docs/design.md lists (KB Q196381 and related articles).
The connector DN in them is the upper-cased X.500 DN; `connector` is its last RDN when the DN names
an object under CN=CONNECTIONS (a 1293 may name the connections container itself: connector None).
Event 9301 carries the caller's network address as upper-case hex of its ASCII text.
"""

from __future__ import annotations

import re

from xcon.profile import counter_path, get_profile

# Counted always (the KB's triple, its inside-server event, the no-match event, schedule Never).
KEY_EVENTS = (1290, 289, 1294, 1293, 9301, 37)
# Every event id the toolkit reads (the above plus queue backlog/subsided, MTA work queue, restart).
EVENT_IDS = KEY_EVENTS + (659, 660, 666, 667, 9298)

_DN = r"(?P<dn>/O=.+?)"
_PATTERNS = {
    1290: re.compile(r"locally initiated association to " + _DN + r" was refused", re.I | re.S),
    289: re.compile(r"A connection to " + _DN + r" could not be opened", re.I | re.S),
    1294: re.compile(r"association with entity " + _DN + r" ended abnormally", re.I | re.S),
    1293: re.compile(r"remotely-initiated association from " + _DN + r" was refused", re.I | re.S),
    37: re.compile(r"An association to " + _DN + r" was refused because", re.I | re.S),
    659: re.compile(r"The queue for " + _DN + r" is backlogged", re.I | re.S),
    660: re.compile(r"queue for " + _DN + r" has subsided", re.I | re.S),
}
_GENERIC_DN = re.compile(_DN + r"(?= (?:was|could|ended|is|has)\b)", re.I | re.S)
_HEX_ADDRESS = re.compile(r"network address (?P<hex>[0-9A-Fa-f]+)\b")
_RDN = re.compile(r"/(O|OU|CN)=", re.I)


def x500_components(dn: str) -> list[tuple[str, str]]:
    """/O=ORG/OU=SITE/CN=A/CN=B -> [("O", "ORG"), ("OU", "SITE"), ("CN", "A"), ("CN", "B")]."""
    marks = list(_RDN.finditer(dn))
    parts = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(dn)
        parts.append((mark.group(1).upper(), dn[mark.end():end]))
    return parts


def connector_from_dn(dn: str | None) -> str | None:
    """The connector RDN of an X.500 connector DN (case-insensitive), None for other objects."""
    if not dn:
        return None
    parts = x500_components(dn)
    if len(parts) >= 2 and parts[-2][0] == "CN" and parts[-2][1].upper() == "CONNECTIONS":
        return parts[-1][1]
    return None


def decode_hex_address(value: str) -> str:
    """9301's address: hex of the ASCII text (3139382E... -> 198....)."""
    try:
        return bytes.fromhex(value).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return bytes.fromhex(value).decode("latin-1") if len(value) % 2 == 0 else value


def parse_event(event: dict, connectors=None) -> dict:
    """One event_query event -> {id, time, type, category, dn, connector, address, message}.

    `connectors` (optional names) maps the upper-cased RDN back to the connector's real name."""
    event_id = int(event.get("id"))
    message = str(event.get("message") or "")
    dn = address = None
    pattern = _PATTERNS.get(event_id)
    match = pattern.search(message) if pattern else None
    if match is None and event_id != 9301:
        match = _GENERIC_DN.search(message)
    if match is not None:
        dn = match.group("dn")
    if event_id == 9301:
        found = _HEX_ADDRESS.search(message)
        if found:
            address = decode_hex_address(found.group("hex"))
    connector = connector_from_dn(dn)
    if connector is not None and connectors:
        by_upper = {str(name).upper(): name for name in connectors}
        connector = by_upper.get(connector.upper(), connector)
    return {
        "id": event_id,
        "time": event.get("time"),
        "type": event.get("type"),
        "category": event.get("category"),
        "dn": dn,
        "connector": connector,
        "address": address,
        "message": message,
    }


def parse_events(events, connectors=None) -> list[dict]:
    """event_query events -> parsed events (same order: oldest first)."""
    return [parse_event(e, connectors) for e in (events or [])]


def build_evidence(server: str, since, event_data, counter_data, service_data, connectors=None) -> dict:
    """The evidence shape from the data of event_query, perf_counters and service (query).

    counts: per event id as strings, the KEY_EVENTS always present; addresses_9301: distinct
    decoded caller addresses in order of appearance; queues: Queue Length per 'MSExchangeMTA
    Connections' instance; work_queue: 'MSExchangeMTA\\Work Queue Length' (None when not read)."""
    event_data = event_data or {}
    events = parse_events(event_data.get("events"), connectors)
    counts = {str(i): 0 for i in KEY_EVENTS}
    addresses = []
    for event in events:
        counts[str(event["id"])] = counts.get(str(event["id"]), 0) + 1
        if event["id"] == 9301 and event["address"] and event["address"] not in addresses:
            addresses.append(event["address"])
    queues, work_queue = {}, None
    for sample in (counter_data or {}).get("samples") or []:
        path = str(sample.get("path") or "").lower()
        value = sample.get("value")
        value = int(value) if isinstance(value, (int, float)) and float(value).is_integer() else value
        if "\\msexchangemta connections(" in path and path.endswith("\\queue length"):
            instance = sample.get("instance")
            if instance is None:
                instance = path[path.index("connections(") + 12:path.rindex(")")]
            queues[instance] = value
        elif path.endswith("\\msexchangemta\\work queue length"):
            work_queue = value
    service = None
    if service_data:
        service = {"name": service_data.get("name"), "state": service_data.get("state")}
    return {
        "server": server,
        "since": since,
        "now": event_data.get("now"),
        "events": events,
        "counts": counts,
        "addresses_9301": addresses,
        "queues": queues,
        "work_queue": work_queue,
        "service": service,
    }


def evidence_ops(server: str, since=None, profile=None, max_events: int = 1000, ids=EVENT_IDS) -> list[dict]:
    """The three ops (event_query, perf_counters, service query) whose data build_evidence takes."""
    profile = profile or get_profile("5.5")
    params = {"server": server, "log": profile["event_log"], "source": profile["event_source"],
              "ids": list(ids), "max": max_events}
    if since:
        params["since"] = since
    return [
        {"op": "event_query", "params": params},
        {"op": "perf_counters", "params": {"server": server, "paths": [
            counter_path(profile, "queues", server), counter_path(profile, "work_queue", server)]}},
        {"op": "service", "params": {"server": server, "name": profile["service"], "action": "query"}},
    ]
