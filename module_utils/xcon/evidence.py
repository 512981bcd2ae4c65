"""MSExchangeMTA events, counters and service state -> the evidence shape (docs/design.md).

Sources of the event texts and fields: docs/facts.md "MTA events" (KB Q196381, Q169716, Q193380,
Q189345, Q256844, Q163085, Q146397, Q174695, Q163294).

Each event is read **insertion strings first** (``strings``: EventLogEntry.ReplacementStrings, sent
by event_query with every event), the message text second: a host whose MTA message DLL cannot be
loaded serves only "The description for Event ID ... cannot be found" plus the insertion strings,
and an old or localised message file may word the sentence differently.  From the strings:

* the connector DN is the insertion string that is an X.500 DN (``/O=...``); which position it has
  is not documented, so none is assumed;
* event 9301: ``%1`` is the local transport stack's DN and ``%2`` the caller's network address in hex
  (Q256844); again the address is recognised by its form (hex digits), not by its position.

The connector DN is upper-cased in practice; ``connector`` is its last RDN when the DN names an
object under CN=CONNECTIONS (a 1293 may name the connections container itself: connector None).

Event 9301's address (Q193380, Q256844, Q169113): an IPv4 address is its four octets in hex
(``91F5C11B`` = 145.245.193.27); a name is the hex of its ASCII text (``52656d6f74654d5441`` =
"RemoteMTA").  Eight hex digits decode as IPv4, other lengths as text.  Since 5.5 SP2 the MTA logs a
9301 only after a failed reverse lookup (Q189345) and some builds never log it (Q234962), so the
diagnosis never requires one.
"""

from __future__ import annotations

import ipaddress
import re

from xcon.profile import counter_path, get_profile, shared_profile

# Counted always (the KB's triple, its inside-server event, the no-match event, schedule Never).
KEY_EVENTS = (1290, 289, 1294, 1293, 9301, 37)
# Every event id the toolkit reads: the above plus connector queue backlog/subsided (659/660), MTA
# work queue backlog/subsided (666/667) and MTA startup/closedown with version and build (9298/9299).
EVENT_IDS = KEY_EVENTS + (659, 660, 666, 667, 9298, 9299)
MAX_EVENTS = 2000
DEFAULT_WINDOW_MINUTES = 120     # the role default of xcon_evidence_window_minutes

_DN = r"(?P<dn>/O=.+?)"
_WS = r"\s+"
# The sentences as the KB articles quote them (whitespace-tolerant: the articles wrap lines).
_PATTERNS = {
    1290: re.compile(r"locally initiated association to\s*" + _DN + _WS + r"was refused", re.I | re.S),
    289: re.compile(r"A connection to\s*" + _DN + _WS + r"could not be opened", re.I | re.S),
    1294: re.compile(r"association with entity\s*" + _DN + _WS + r"ended abnormally", re.I | re.S),
    1293: re.compile(r"remotely-initiated association from\s*" + _DN + _WS + r"was refused", re.I | re.S),
    37: re.compile(r"The\s*" + _DN + r"\s*\(Adjacent-MTA\) entity attempted to open an association", re.I | re.S),
    659: re.compile(r"The queue for\s*" + _DN + _WS + r"is backlogged with (?P<n>\d+) messages", re.I | re.S),
    660: re.compile(r"The queue backlog for\s*" + _DN + _WS + r"has subsided leaving (?P<n>\d+) messages", re.I | re.S),
    666: re.compile(r"MTA work queue is backlogged with (?P<n>\d+) messages", re.I | re.S),
    667: re.compile(r"MTA work queue backlog has subsided leaving (?P<n>\d+) messages", re.I | re.S),
}
_GENERIC_DN = re.compile(_DN + r"(?=\s*(?:\(Adjacent-MTA\)|(?:was|could|ended|is|has)\b))", re.I | re.S)
_9301 = re.compile(r"network\s+address\s+(?P<hex>[0-9A-Fa-f]+)\b(?:\s+and\s+the\s+transport\s+stack\s+"
                   r"(?P<stack>/o=.+?)\s+could\s+not\s+be\s+found)?", re.I | re.S)
# .NET's EventLogEntry.Message without the message DLL: "The description for Event ID '1290' in
# Source 'MSExchangeMTA' cannot be found. ... The following information is part of the event:'a', 'b'"
_NOT_FORMATTED = re.compile(r"^The description for Event ID .*? cannot be found\..*?part of the event:\s*(?P<rest>.*)$",
                            re.I | re.S)
_VERSION = re.compile(r"version\s+(?P<version>[0-9.]+)\s*\(build\s+(?P<build>[0-9.]+)\)", re.I | re.S)
_RDN = re.compile(r"/(O|OU|CN)=", re.I)
_X500 = re.compile(r"^\s*/O=", re.I)
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_NUMBER = re.compile(r"^\d+$")


def x500_components(dn: str) -> list[tuple[str, str]]:
    """/O=ORG/OU=SITE/CN=A/CN=B -> [("O", "ORG"), ("OU", "SITE"), ("CN", "A"), ("CN", "B")]."""
    marks = list(_RDN.finditer(dn))
    parts = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(dn)
        parts.append((mark.group(1).upper(), dn[mark.end():end].strip()))
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
    """Event 9301's network address -> text: eight hex digits are an IPv4 address's four octets
    (91F5C11B -> 145.245.193.27, Q193380); other lengths are the hex of a name's ASCII text
    (52656d6f74654d5441 -> RemoteMTA).  Hex that is not printable text, and a value that is not
    hex, are returned as logged (nothing is guessed)."""
    text = str(value or "").strip()
    if not _HEX.match(text):
        return text
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    try:
        decoded = raw.decode("ascii")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None and decoded.isprintable():
        return decoded
    return text


def _clean_dn(dn: str) -> str:
    # an article's (or a viewer's) line wrap before an RDN is not part of the DN
    dn = re.sub(r"\s+(?=/(?:O|OU|CN)=)", "", dn.strip(), flags=re.I)
    return re.sub(r"\s*\n\s*", " ", dn)


def _strings(event: dict) -> list[str]:
    value = event.get("strings")
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    return [str(s) for s in value if s is not None]


def _from_strings(event_id: int, strings: list[str]) -> dict:
    """DN, 9301 address/stack and counts from the insertion strings (by their form)."""
    found = {}
    dns = [s.strip() for s in strings if _X500.match(s)]
    if event_id == 9301:
        if dns:
            found["stack"] = dns[0]
        ordered = strings[1:2] + strings[:1] + strings[2:]  # %2 is the address (Q256844)
        for value in ordered:
            if _HEX.match(value.strip()) and not _X500.match(value):
                found["hex"] = value.strip()
                break
    elif dns:
        found["dn"] = dns[0]
    if event_id in (659, 660, 666, 667):
        numbers = [s.strip() for s in strings if _NUMBER.match(s.strip())]
        if numbers:
            found["n"] = int(numbers[0])
    if event_id in (9298, 9299):
        found.update(_version_from(" ".join(strings), strings))
    return found


def _version_from(text: str, strings=()) -> dict:
    match = _VERSION.search(text)
    if match:
        return {"version": match.group("version"), "build": match.group("build").rstrip(".")}
    numbers = [s.strip() for s in strings if re.match(r"^\d+(?:\.\d+)*$", s.strip())]
    if len(numbers) >= 2:
        return {"version": numbers[0], "build": numbers[1]}
    return {}


def _quoted_strings(message: str) -> list[str] | None:
    """The insertion strings quoted in .NET's "description ... cannot be found" text, else None."""
    match = _NOT_FORMATTED.match(message.strip())
    if match is None:
        return None
    rest = match.group("rest").strip()
    if not (rest.startswith("'") and rest.endswith("'")):
        return [rest] if rest else []
    return rest[1:-1].split("', '")


def _from_text(event_id: int, message: str) -> dict:
    quoted = _quoted_strings(message)
    if quoted is not None:
        return _from_strings(event_id, quoted)
    found = {}
    if event_id == 9301:
        match = _9301.search(message)
        if match:
            found["hex"] = match.group("hex")
            if match.group("stack"):
                found["stack"] = _clean_dn(match.group("stack"))
        return found
    pattern = _PATTERNS.get(event_id)
    match = pattern.search(message) if pattern else None
    if match is None and event_id not in (666, 667, 9298, 9299):
        match = _GENERIC_DN.search(message)
    if match is not None:
        groups = match.groupdict()
        if groups.get("dn"):
            found["dn"] = _clean_dn(groups["dn"])
        if groups.get("n"):
            found["n"] = int(groups["n"])
    if event_id in (9298, 9299):
        found.update(_version_from(message))
    return found


def parse_event(event: dict, connectors=None) -> dict:
    """One event_query event -> {id, record, time, type, category, dn, connector, address, message, parsed_from}
    (+ ``stack`` for 9301, ``count`` for 659/660/666/667, ``version``/``build`` for 9298/9299).

    Insertion strings first, the message text for whatever they do not give; ``parsed_from`` says
    which ("strings", "text", "strings+text" or None when neither named anything).
    `connectors` (optional names) maps the upper-cased RDN back to the connector's real name."""
    event_id = int(event.get("id"))
    message = str(event.get("message") or "")
    found = _from_strings(event_id, _strings(event))
    sources = ["strings"] if found else []
    wanted = ("hex", "stack") if event_id == 9301 else ("dn",)
    if any(key not in found for key in wanted) or (event_id in (659, 660, 666, 667) and "n" not in found) \
            or (event_id in (9298, 9299) and "build" not in found):
        extra = {k: v for k, v in _from_text(event_id, message).items() if k not in found}
        if extra:
            found.update(extra)
            sources.append("text")
    dn = found.get("dn")
    connector = connector_from_dn(dn)
    if connector is not None and connectors:
        by_upper = {str(name).upper(): name for name in connectors}
        connector = by_upper.get(connector.upper(), connector)
    parsed = {
        "id": event_id,
        "record": event.get("record"),
        "time": event.get("time"),
        "type": event.get("type"),
        "category": event.get("category"),
        "dn": dn,
        "connector": connector,
        "address": decode_hex_address(found["hex"]) if found.get("hex") else None,
        "message": message,
        "parsed_from": "+".join(sources) or None,
    }
    if event_id == 9301:
        parsed["address_hex"] = found.get("hex")
        parsed["stack"] = found.get("stack")
    if "n" in found:
        parsed["count"] = found["n"]
    if event_id in (9298, 9299):
        parsed["version"], parsed["build"] = found.get("version"), found.get("build")
    return parsed


def parse_events(events, connectors=None) -> list[dict]:
    """event_query events -> parsed events (same order: oldest first)."""
    return [parse_event(e, connectors) for e in (events or [])]


def build_evidence(server: str, since, event_data, counter_data, service_data, connectors=None) -> dict:
    """The evidence shape from the data of event_query, perf_counters and service (query).

    counts: per event id as strings, the KEY_EVENTS always present; addresses_9301: distinct
    decoded caller addresses in order of appearance; mta: version and build of the newest
    9298/9299 in the window (None without one); queues: Queue Length per 'MSExchangeMTA
    Connections' instance; work_queue: 'MSExchangeMTA\\Work Queue Length' (None when not read)."""
    event_data = event_data or {}
    events = parse_events(event_data.get("events"), connectors)
    counts = {str(i): 0 for i in KEY_EVENTS}
    addresses = []
    mta = None
    for event in events:
        counts[str(event["id"])] = counts.get(str(event["id"]), 0) + 1
        if event["id"] == 9301 and event["address"] and event["address"] not in addresses:
            addresses.append(event["address"])
        if event["id"] in (9298, 9299) and event.get("build"):
            mta = {"version": event.get("version"), "build": event.get("build"), "time": event.get("time")}
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
        "mta": mta,
        "queues": queues,
        "work_queue": work_queue,
        "service": service,
    }


def since_window(window_minutes) -> str:
    """event_query's `since` for the last `window_minutes` of the SERVER's clock: an xs:duration
    the op resolves against the server's own now (a management host's clock may differ)."""
    minutes = int(window_minutes)
    if minutes < 1:
        raise ValueError(f"an evidence window of {window_minutes!r} minutes")
    return f"-PT{minutes}M"


def evidence_ops(server: str, profile=None, window_minutes=DEFAULT_WINDOW_MINUTES, since=None,
                 max_events: int = MAX_EVENTS, ids=EVENT_IDS) -> list[dict]:
    """The three ops (event_query, perf_counters, service query) whose data build_evidence takes, with
    the op ids decode_evidence reads ("events", "counters", "service").  The one copy: the audit
    (xcon_connector_info), xcon_mta_evidence and xcon_verify all send these. The event read always
    stops: at `since` (an ISO time of the server's clock) when given, else at the start of the last
    `window_minutes` on the server's clock, so a busy Application log is never walked whole."""
    profile = profile or get_profile("5.5")
    params = {"server": server, "log": profile["event_log"], "source": profile["event_source"],
              "ids": list(ids), "max": max_events, "since": since or since_window(window_minutes)}
    return [
        {"id": "events", "op": "event_query", "params": params},
        {"id": "counters", "op": "perf_counters", "params": {"server": server, "paths": [
            counter_path(profile, "queues", server), counter_path(profile, "work_queue", server)]}},
        {"id": "service", "op": "service", "params": {"server": server, "name": profile["service"], "action": "query"}},
    ]


def verify_window(link, servers):
    """How long a verification must watch the link at least: a refused caller retries once per open
    interval, so mail can move between two bursts of refusals; the window covers the profile's
    number (2) of the slower side's open intervals, read from the link's connectors."""
    seconds, basis = [], []
    for side in ("inside", "outside"):
        host = link[side].get("host")
        server = servers.get(host) or next((s for s in servers.values() if s.get("inventory_host") == host), {})
        assumptions = shared_profile(server.get("exchange_version", "5.5"))["assumptions"]
        attribute = assumptions["open_retry_attribute"]
        names = {_norm(link[side].get(key)) for key in ("connector", "reverse_connector")} - {""}
        for connector in server.get("connectors") or []:
            if _norm(connector.get("name")) not in names:
                continue
            attrs = connector.get("attributes") or {}
            value = attrs.get(attribute, attrs.get(attribute[0].lower() + attribute.replace("-", "")[1:]))
            given = isinstance(value, int) and not isinstance(value, bool) and value > 0
            seconds.append(value if given else assumptions["open_retry_default_seconds"])
            basis.append(f"{host} {connector.get('name')}: {seconds[-1]} s" + ("" if given else " (default)"))
    assumptions = shared_profile("5.5")["assumptions"]
    interval = max(seconds or [assumptions["open_retry_default_seconds"]])
    count = assumptions["verify_open_retries"]
    return {"minutes": -(-count * interval // 60), "open_retry_seconds": interval, "open_retries": count,
            "basis": basis or [f"no connector read: the default open interval {interval} s"]}


def _norm(value):
    return str(value or "").strip().lower()
