"""Load and validate a lab topology (``shared/spec/lab.md``, ``version: 1``); generate N-link ones.

:func:`load` / :func:`validate` return a *normalised* copy (every optional key filled with its
default) or raise :class:`TopologyError` naming the file, the key path
(``servers.EXIN.connectors[0].schedule``) and what was expected. Nothing is guessed: unknown keys,
wrong types, bad enums and dangling references are all errors.

Keys added to the spec's format (all optional):

* top level: ``start_time`` (ISO-8601 UTC, default 2026-01-05T09:00:00Z), ``backlog_threshold``
  (queue length that logs 659, default 10), ``description``, ``management_hosts``;
* ``servers.X.winrm``: ``port`` (0 = the lab picks), ``rights`` (admin | read-only),
  ``auth`` also ``kerberos`` (domain accounts, the lab's KDC) and ``credssp``,
  ``extra_users`` (``[{username, password, rights}]``); ``winrm: null`` with ``managed_by: MGMT``;
* ``servers.X.connectors[]``: ``routing_list`` (list of ``TYPE:address;cost``), ``local_mta_name``,
  ``local_mta_password`` (Override page), ``schedule_grid`` (168 hex chars; default for
  ``selected``: the first quarter hour of every hour), ``open_retry_interval`` (seconds);
* ``servers.X``: ``mta_build`` (the MTA's build, KB Q163294, e.g. ``"2448.1"`` = 5.5 SP2; it decides
  which 9301 events the MTA logs), ``reverse_lookup`` (``{address: name | null}``: what this server's
  resolver answers for an address; default the lab host's fqdn), ``message_dll`` (``reachable`` |
  ``unreachable``: event messages cannot be formatted, only insertion strings survive),
  ``event_log`` (recorded Application log entries served as recorded: ``[{id, source, type,
  category, minutes_ago, message, strings}]``, ``minutes_ago`` before ``start_time``);
* ``management_hosts: {MGMT1: {winrm: {...}, manages: [EXIN], address: 192.0.2.20}}`` (``fqdn``
  optional: the host's DNS name, default ``<name>.<realm's DNS domain>``);
* ``firewalls.F.passers[].address``: an alias address on that interface the GSP listens on
  (default: the interface address), so one firewall can carry several GSP links;
* ``firewalls.F.documented``: the facts an out-of-date record claims (same keys as the firewall).
* ``servers.X``: ``ldap_port`` (where the Exchange 5.5 directory answers LDAP, default 389),
  ``domain_controller`` (the server is a Windows 2000 domain controller: Active Directory answers
  LDAP on 389, Q224447 / Q250989; default false), ``mta_port`` (the MTA's TCP port, the registry
  value "RFC1006 Port Number", Q161931; default 102 = value absent);
* ``*.winrm``: ``dotnet35`` (the host has .NET Framework 3.5, default true; Windows PowerShell 2.0
  needs only .NET 2.0), ``codepage`` (the host's ANSI code page, in which it decodes Basic
  credentials; default 1252);
* ``firewalls.F.interface_names``: DNS names of the interfaces (``{internal: NAME, external: NAME}``),
  which every host's resolver knows (a Stack address may name them).
"""
from __future__ import annotations

import copy
import datetime as _dt
import ipaddress
import re
from typing import Any, Dict, List, Mapping, Optional

import yaml

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
        super().__init__(f"{file}: {key or '(top level)'}: expected {expected}")


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
                self.fail(f"{key}.{name}", "string keys")
            if allowed is not None and name not in allowed:
                self.fail(f"{key}.{name}" if key else name,
                          f"one of the keys {', '.join(allowed)} (unknown key '{name}')")
        for name in required:
            if name not in value:
                self.fail(f"{key}.{name}" if key else name, "this key (it is required)")
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
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            self.fail(key, f"a number >= {low}", value)
        return float(value)

    def ip(self, value: Any, key: str) -> str:
        try:
            if not isinstance(value, str):
                raise ValueError
            return str(ipaddress.ip_address(value))
        except ValueError:
            self.fail(key, "an IPv4 or IPv6 address", value)

    def names(self, value: Any, key: str, known, what: str) -> List[str]:
        if not isinstance(value, list):
            self.fail(key, f"a list of {what}", value)
        for index, item in enumerate(value):
            if item not in known:
                self.fail(f"{key}[{index}]", f"the name of a {what} defined in this file", item)
        if len(set(value)) != len(value):
            self.fail(key, f"distinct {what} names", value)
        return list(value)


# -- loading ------------------------------------------------------------------------------------
def load(path: str) -> Dict[str, Any]:
    """Read and validate a topology file."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise TopologyError(path, "", f"a readable file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise TopologyError(path, "", f"valid YAML ({str(exc).splitlines()[0]})") from None
    return validate(data, source=path)


def validate(data: Any, source: str = "<topology>") -> Dict[str, Any]:
    """Validate topology data; return a normalised deep copy with defaults filled in."""
    c = _Checker(source)
    top = c.mapping(data, "", ["version", "organization", "time_scale", "servers", "firewalls", "traffic",
                               "management_hosts", "start_time", "backlog_threshold", "description"],
                    required=["version", "organization", "servers"])
    if top["version"] != 1 or isinstance(top["version"], bool):
        c.fail("version", "1", top["version"])
    out: Dict[str, Any] = {"version": 1}
    out["organization"] = c.string(top["organization"], "organization", 64, SITE_RE,
                                   "an organisation name (no '/', '=')")
    out["time_scale"] = c.number(top.get("time_scale", 60), "time_scale")
    out["backlog_threshold"] = c.integer(top.get("backlog_threshold", 10), "backlog_threshold", 1, 1_000_000)
    start = top.get("start_time", DEFAULT_START)
    if not isinstance(start, str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", start):
        c.fail("start_time", "an ISO-8601 UTC time like 2026-01-05T09:00:00Z", start)
    try:
        _dt.datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        c.fail("start_time", "a valid date and time", start)
    out["start_time"] = start
    if "description" in top:
        out["description"] = c.string(top["description"], "description", 4096)

    servers = c.mapping(top["servers"], "servers")
    if not servers:
        c.fail("servers", "at least one server")
    managers = top.get("management_hosts") or {}
    c.mapping(managers, "management_hosts")
    out["servers"] = {}
    for name, server in servers.items():
        c.string(name, f"servers.{name}", 15, NAME_RE, "a NetBIOS server name (letters, digits, '-', '_')")
        out["servers"][name] = _server(c, name, server, servers, managers)
    out["management_hosts"] = {}
    for name, host in managers.items():
        key = f"management_hosts.{name}"
        c.string(name, key, 15, NAME_RE, "a NetBIOS host name")
        if name in servers:
            c.fail(key, "a name that is not also an Exchange server's", name)
        host = c.mapping(host, key, ["winrm", "manages", "address", "fqdn"], required=["winrm", "manages"])
        entry = {"winrm": _winrm(c, host["winrm"], f"{key}.winrm"),
                 "manages": c.names(host["manages"], f"{key}.manages", servers, "server")}
        if not entry["manages"]:
            c.fail(f"{key}.manages", "at least one server")
        if host.get("address") is not None:
            entry["address"] = c.ip(host["address"], f"{key}.address")
        if host.get("fqdn") is not None:
            entry["fqdn"] = c.string(host["fqdn"], f"{key}.fqdn", 255)
        out["management_hosts"][name] = entry
    for name, server in out["servers"].items():
        manager = server.get("managed_by")
        if manager is not None and name not in out["management_hosts"][manager]["manages"]:
            c.fail(f"servers.{name}.managed_by", f"a management host whose 'manages' lists {name}", manager)

    _cross_server_checks(c, out["servers"])
    firewalls = c.mapping(top.get("firewalls") or {}, "firewalls")
    out["firewalls"] = {n: _firewall(c, n, f, out["servers"]) for n, f in firewalls.items()}
    _cross_firewall_checks(c, out)
    out["traffic"] = _traffic(c, top.get("traffic") or [], out["servers"])
    return out


def _winrm(c: _Checker, value: Any, key: str) -> Dict[str, Any]:
    w = c.mapping(value, key, ["scheme", "auth", "username", "password", "rights", "port", "extra_users",
                               "dotnet35", "codepage"],
                  required=["username", "password"])
    out = {"scheme": c.enum(w.get("scheme", "http"), f"{key}.scheme", SCHEMES)}
    auth = w.get("auth", ["basic", "ntlm"])
    if not isinstance(auth, list) or not auth:
        c.fail(f"{key}.auth", "a non-empty list of " + " | ".join(AUTHS), auth)
    for index, item in enumerate(auth):
        c.enum(item, f"{key}.auth[{index}]", AUTHS)
    out["auth"] = list(auth)
    out["username"] = c.string(w["username"], f"{key}.username", 104)
    if not isinstance(w["password"], str):
        c.fail(f"{key}.password", "a string", type(w["password"]).__name__)
    out["password"] = w["password"]
    out["rights"] = c.enum(w.get("rights", "admin"), f"{key}.rights", RIGHTS)
    out["port"] = c.integer(w.get("port", 0), f"{key}.port", 0, 65535)
    out["dotnet35"] = c.boolean(w.get("dotnet35", True), f"{key}.dotnet35")
    out["codepage"] = c.integer(w.get("codepage", 1252), f"{key}.codepage", 37, 65001)
    try:
        "".encode(f"cp{out['codepage']}")
    except LookupError:
        c.fail(f"{key}.codepage", "a Windows ANSI code page such as 1252 or 1251", out["codepage"])
    extra = w.get("extra_users", [])
    if not isinstance(extra, list):
        c.fail(f"{key}.extra_users", "a list", extra)
    out["extra_users"] = []
    for index, user in enumerate(extra):
        ukey = f"{key}.extra_users[{index}]"
        user = c.mapping(user, ukey, ["username", "password", "rights"], required=["username", "password"])
        if not isinstance(user["password"], str):
            c.fail(f"{ukey}.password", "a string")
        out["extra_users"].append({"username": c.string(user["username"], f"{ukey}.username", 104),
                                   "password": user["password"],
                                   "rights": c.enum(user.get("rights", "admin"), f"{ukey}.rights", RIGHTS)})
    names = [out["username"].lower()] + [u["username"].lower() for u in out["extra_users"]]
    if len(set(names)) != len(names):
        c.fail(f"{key}.extra_users", "user names distinct from each other and from username")
    return out


def _server(c: _Checker, name: str, value: Any, servers: Mapping, managers: Mapping) -> Dict[str, Any]:
    key = f"servers.{name}"
    s = c.mapping(value, key, ["site", "address", "fqdn", "exchange", "winrm", "managed_by", "connectors", "queued",
                               "ldap_port", "domain_controller", "mta_port"]
                  + list(EVENT_KEYS), required=["site", "address"])
    out: Dict[str, Any] = {"site": c.string(s["site"], f"{key}.site", 64, SITE_RE, "a site name (no '/', '=')"),
                           "address": c.ip(s["address"], f"{key}.address")}
    fqdn = s.get("fqdn")
    out["fqdn"] = c.string(fqdn, f"{key}.fqdn", 253, HOST_RE, "a DNS host name") if fqdn is not None else None
    version = s.get("exchange", "5.5")
    if isinstance(version, float):
        version = f"{version:.1f}"
    out["exchange"] = c.enum(version, f"{key}.exchange", EXCHANGE_VERSIONS)
    out["ldap_port"] = c.integer(s.get("ldap_port", 389), f"{key}.ldap_port", 1, 65535)
    out["domain_controller"] = c.boolean(s.get("domain_controller", False), f"{key}.domain_controller")
    if out["domain_controller"] and out["ldap_port"] in (636, 3268, 3269):
        c.fail(f"{key}.ldap_port", "a port Active Directory does not hold on a domain controller", out["ldap_port"])
    out["mta_port"] = c.integer(s.get("mta_port", 102), f"{key}.mta_port", 1, 65535)
    out["winrm"] = _winrm(c, s["winrm"], f"{key}.winrm") if s.get("winrm") is not None else None
    manager = s.get("managed_by")
    if manager is not None and manager not in managers:
        c.fail(f"{key}.managed_by", "the name of a host under management_hosts", manager)
    if manager is not None:
        out["managed_by"] = manager
    connectors = s.get("connectors", [])
    if not isinstance(connectors, list):
        c.fail(f"{key}.connectors", "a list of connectors", connectors)
    out["connectors"] = [_connector(c, f"{key}.connectors[{i}]", conn, servers) for i, conn in enumerate(connectors)]
    seen: Dict[str, int] = {}
    for index, conn in enumerate(out["connectors"]):
        folded = conn["name"].casefold()
        if folded in seen:
            c.fail(f"{key}.connectors[{index}].name",
                   f"a name unique on this server (connectors[{seen[folded]}] is also '{conn['name']}')")
        seen[folded] = index
    queued = c.mapping(s.get("queued") or {}, f"{key}.queued")
    out["queued"] = {}
    for conn_name, count in queued.items():
        if conn_name.casefold() not in seen:
            c.fail(f"{key}.queued.{conn_name}", "the name of one of this server's connectors", conn_name)
        out["queued"][conn_name] = c.integer(count, f"{key}.queued.{conn_name}", 0, 10_000_000)
    out.update(_event_keys(c, key, s))
    return out


EVENT_KEYS = ("mta_build", "reverse_lookup", "message_dll", "event_log")
EVENT_TYPES = ("Error", "Warning", "Information", "SuccessAudit", "FailureAudit")


def _event_keys(c: _Checker, key: str, s: Mapping) -> Dict[str, Any]:
    """The MTA's build, its reverse lookups, its message DLL and a recorded Application log."""
    out: Dict[str, Any] = {}
    build = s.get("mta_build")
    if build is not None:
        if not isinstance(build, str) or not re.fullmatch(r"\d{3,5}\.\d{1,3}", build):
            c.fail(f"{key}.mta_build", "an MTA build like '2653.23' (KB Q163294)", build)
        out["mta_build"] = build
    lookups = c.mapping(s.get("reverse_lookup") or {}, f"{key}.reverse_lookup")
    out["reverse_lookup"] = {}
    for address, name in lookups.items():
        where = f"{key}.reverse_lookup.{address}"
        address = c.ip(address, where)
        if name is not None:
            c.string(name, where, 253, HOST_RE, "a host name, or null (the lookup fails)")
        out["reverse_lookup"][address] = name
    out["message_dll"] = c.enum(s.get("message_dll", "reachable"), f"{key}.message_dll", ("reachable", "unreachable"))
    log = s.get("event_log") or []
    if not isinstance(log, list):
        c.fail(f"{key}.event_log", "a list of {id, source, type, category, minutes_ago, message, strings}", log)
    out["event_log"] = []
    for index, entry in enumerate(log):
        ekey = f"{key}.event_log[{index}]"
        e = c.mapping(entry, ekey, ["id", "source", "type", "category", "minutes_ago", "message", "strings"],
                      required=["id", "minutes_ago", "message"])
        strings = e.get("strings") or []
        if not isinstance(strings, list) or not all(isinstance(v, str) for v in strings):
            c.fail(f"{ekey}.strings", "a list of strings (the insertion strings)", strings)
        if not isinstance(e["message"], str):
            c.fail(f"{ekey}.message", "a string (the description as recorded)", e["message"])
        category = e.get("category", "None")
        if not isinstance(category, str):
            c.fail(f"{ekey}.category", "a string", category)
        out["event_log"].append({
            "id": c.integer(e["id"], f"{ekey}.id", 0, 65535),
            "source": c.string(e.get("source", "MSExchangeMTA"), f"{ekey}.source", 256),
            "type": c.enum(e.get("type", "Information"), f"{ekey}.type", EVENT_TYPES),
            "category": category,
            "minutes_ago": c.integer(e["minutes_ago"], f"{ekey}.minutes_ago", 0, 10_000_000),
            "message": e["message"], "strings": list(strings)})
    return out


def _connector(c: _Checker, key: str, value: Any, servers: Mapping) -> Dict[str, Any]:
    allowed = ["name", "display_name", "remote_mta", "remote_password", "stack_address", "address_type", "schedule",
               "schedule_grid", "two_way_alternate", "cost", "connected_site", "routing_list", "local_mta_name",
               "local_mta_password", "open_retry_interval"]
    v = c.mapping(value, key, allowed, required=["name", "remote_mta", "stack_address"])
    out: Dict[str, Any] = {"name": c.string(v["name"], f"{key}.name", 64, what="a connector directory name")}
    if "\0" in out["name"] or "/" in out["name"]:
        c.fail(f"{key}.name", "a name without NUL or '/'", out["name"])
    out["display_name"] = c.string(v.get("display_name", out["name"]), f"{key}.display_name", 256)
    out["remote_mta"] = c.string(v["remote_mta"], f"{key}.remote_mta", 32)
    if out["remote_mta"] not in servers:
        c.fail(f"{key}.remote_mta", "the name of a server defined in this file", out["remote_mta"])
    password = v.get("remote_password", "")
    if not isinstance(password, str) or len(password) > 64:
        c.fail(f"{key}.remote_password", "a string of at most 64 characters", password)
    out["remote_password"] = password
    stack = v["stack_address"]
    if not isinstance(stack, str) or not stack or not stack.isascii() or len(stack) > 50:
        c.fail(f"{key}.stack_address", "an ASCII host name or IP address of 1..50 bytes", stack)
    out["stack_address"] = stack
    is_ip = True
    try:
        ipaddress.ip_address(stack)
    except ValueError:
        is_ip = False
    kind = c.enum(v.get("address_type", "ip" if is_ip else "hostname"), f"{key}.address_type", ADDRESS_TYPES)
    if kind == "ip" and not is_ip:
        c.fail(f"{key}.stack_address", "an IP address (address_type is ip)", stack)
    if kind == "hostname" and not HOST_RE.match(stack):
        c.fail(f"{key}.stack_address", "a DNS host name (address_type is hostname)", stack)
    out["address_type"] = kind
    out["schedule"] = c.enum(v.get("schedule", "always"), f"{key}.schedule", SCHEDULES)
    grid = v.get("schedule_grid")
    if grid is not None:
        if not isinstance(grid, str) or not re.fullmatch(r"[0-9a-fA-F]{168}", grid):
            c.fail(f"{key}.schedule_grid", "168 hex characters (the 84-byte Activation-Schedule)", grid)
        grid = grid.lower()
    out["schedule_grid"] = grid
    out["two_way_alternate"] = c.boolean(v.get("two_way_alternate", True), f"{key}.two_way_alternate")
    out["cost"] = c.integer(v.get("cost", 1), f"{key}.cost", 1, 100)
    site = v.get("connected_site")
    if site is None:
        site = servers[out["remote_mta"]].get("site") if isinstance(servers[out["remote_mta"]], Mapping) else None
    out["connected_site"] = c.string(site, f"{key}.connected_site", 64, SITE_RE, "a site name")
    routes = v.get("routing_list", [])
    if not isinstance(routes, list):
        c.fail(f"{key}.routing_list", "a list of 'TYPE:address;cost' strings", routes)
    for index, route in enumerate(routes):
        if not isinstance(route, str) or not re.match(r"^[A-Za-z0-9]+:.*;\d+$", route) or len(route) > 1024:
            c.fail(f"{key}.routing_list[{index}]", "'TYPE:address;cost', e.g. 'X400:c=US;a= ;p=ORG;o=SITE;;1'", route)
    out["routing_list"] = list(routes)
    for field, limit in (("local_mta_name", 32), ("local_mta_password", 64)):
        item = v.get(field, "")
        if not isinstance(item, str) or len(item) > limit:
            c.fail(f"{key}.{field}", f"a string of at most {limit} characters", item)
        out[field] = item
    out["open_retry_interval"] = c.integer(v.get("open_retry_interval", 600), f"{key}.open_retry_interval",
                                           0, 86400)
    return out


def _cross_server_checks(c: _Checker, servers: Mapping[str, Any]) -> None:
    seen_addr: Dict[str, str] = {}
    seen_fqdn: Dict[str, str] = {}
    site_conns: Dict[str, Dict[str, str]] = {}
    for name, server in servers.items():
        if server["address"] in seen_addr:
            c.fail(f"servers.{name}.address", f"an address not used by {seen_addr[server['address']]}",
                   server["address"])
        seen_addr[server["address"]] = name
        if server["fqdn"]:
            folded = server["fqdn"].lower()
            if folded in seen_fqdn:
                c.fail(f"servers.{name}.fqdn", f"an fqdn not used by {seen_fqdn[folded]}", server["fqdn"])
            seen_fqdn[folded] = name
        # servers of one site share cn=Connections: connector names are unique per site
        names = site_conns.setdefault(server["site"].casefold(), {})
        for index, conn in enumerate(server["connectors"]):
            other = names.get(conn["name"].casefold())
            if other is not None:
                c.fail(f"servers.{name}.connectors[{index}].name",
                       f"a name unique in site {server['site']} (server {other} has a connector of that name)")
            names[conn["name"].casefold()] = name


def _firewall(c: _Checker, name: str, value: Any, servers: Mapping[str, Any]) -> Dict[str, Any]:
    key = f"firewalls.{name}"
    f = c.mapping(value, key, list(FIREWALL_FACTS) + ["documented", "interface_names"],
                  required=["inside", "outside", "interfaces"])
    out = _firewall_facts(c, key, f, servers, full=True)
    names = c.mapping(f.get("interface_names") or {}, f"{key}.interface_names", ["internal", "external"])
    out["interface_names"] = {side: c.string(name, f"{key}.interface_names.{side}", 253, HOST_RE, "a DNS host name")
                              for side, name in names.items()}
    documented = f.get("documented")
    if documented is not None:
        d = c.mapping(documented, f"{key}.documented", list(FIREWALL_FACTS))
        out["documented"] = _firewall_facts(c, f"{key}.documented", d, servers, full=False)
    return out


def _firewall_facts(c: _Checker, key: str, f: Mapping, servers: Mapping[str, Any], full: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if full or "product" in f:
        out["product"] = c.string(f.get("product", "raptor-eagle-5"), f"{key}.product", 64, PRODUCT_RE,
                                  "a product id like raptor-eagle-5")
    if full or "inside" in f:
        out["inside"] = c.names(f.get("inside"), f"{key}.inside", servers, "server")
    if full or "outside" in f:
        out["outside"] = c.names(f.get("outside"), f"{key}.outside", servers, "server")
    if "inside" in out and "outside" in out:
        both = sorted(set(out["inside"]) & set(out["outside"]))
        if both:
            c.fail(f"{key}.outside", f"servers not also inside ({', '.join(both)} are on both sides)")
    if full or "interfaces" in f:
        i = c.mapping(f.get("interfaces"), f"{key}.interfaces", ["internal", "external"],
                      required=["internal", "external"])
        out["interfaces"] = {"internal": c.ip(i["internal"], f"{key}.interfaces.internal"),
                             "external": c.ip(i["external"], f"{key}.interfaces.external")}
        if out["interfaces"]["internal"] == out["interfaces"]["external"]:
            c.fail(f"{key}.interfaces", "two different addresses")
    if full or "passers" in f:
        passers = f.get("passers", [])
        if not isinstance(passers, list):
            c.fail(f"{key}.passers", "a list of {port, interface, target}", passers)
        out["passers"] = []
        seen = set()
        for index, p in enumerate(passers):
            pkey = f"{key}.passers[{index}]"
            p = c.mapping(p, pkey, ["port", "interface", "target", "address"],
                          required=["port", "interface", "target"])
            entry = {"port": c.integer(p["port"], f"{pkey}.port", 1, 65535),
                     "interface": c.enum(p["interface"], f"{pkey}.interface", ("internal", "external")),
                     "target": p["target"]}
            if p["target"] not in servers:
                c.fail(f"{pkey}.target", "the name of a server defined in this file", p["target"])
            if p.get("address") is not None:
                entry["address"] = c.ip(p["address"], f"{pkey}.address")
            where = (entry["port"], entry["interface"], entry.get("address"))
            if where in seen:
                c.fail(pkey, f"one passer per port and listening address ({entry['port']} on "
                       f"{entry.get('address') or entry['interface']} twice)")
            seen.add(where)
            out["passers"].append(entry)
    if full or "routed_paths" in f:
        paths = f.get("routed_paths", [])
        if not isinstance(paths, list):
            c.fail(f"{key}.routed_paths", "a list of {hosts: [A, B], port}", paths)
        out["routed_paths"] = []
        for index, p in enumerate(paths):
            pkey = f"{key}.routed_paths[{index}]"
            p = c.mapping(p, pkey, ["hosts", "port"], required=["hosts", "port"])
            hosts = c.names(p["hosts"], f"{pkey}.hosts", servers, "server")
            if len(hosts) != 2:
                c.fail(f"{pkey}.hosts", "exactly two different servers", hosts)
            out["routed_paths"].append({"hosts": hosts, "port": c.integer(p["port"], f"{pkey}.port", 1, 65535)})
    if full or "client_transparency" in f:
        out["client_transparency"] = c.boolean(f.get("client_transparency", False), f"{key}.client_transparency")
    return out


def _cross_firewall_checks(c: _Checker, topo: Dict[str, Any]) -> None:
    inside_of: Dict[str, str] = {}
    addresses = {s["address"]: f"server {n}" for n, s in topo["servers"].items()}
    for name, fw in topo["firewalls"].items():
        key = f"firewalls.{name}"
        for server in fw["inside"]:
            if server in inside_of:
                c.fail(f"{key}.inside", f"servers not inside another firewall ({server} is inside {inside_of[server]})")
            inside_of[server] = name
        for side in ("internal", "external"):
            address = fw["interfaces"][side]
            if address in addresses:
                c.fail(f"{key}.interfaces.{side}", f"an address not used by {addresses[address]}", address)
            addresses[address] = f"firewall {name}"
        members = set(fw["inside"]) | set(fw["outside"])
        for index, passer in enumerate(fw["passers"]):
            alias = passer.get("address")
            if alias is not None and alias not in (fw["interfaces"]["internal"], fw["interfaces"]["external"]):
                if alias in addresses:
                    c.fail(f"{key}.passers[{index}].address", f"an address not used by {addresses[alias]}", alias)
                addresses[alias] = f"firewall {name} ({passer['interface']} alias)"
        for index, passer in enumerate(fw["passers"]):
            if passer["target"] not in members:
                c.fail(f"{key}.passers[{index}].target", f"a server listed in {name}'s inside or outside",
                       passer["target"])
    for name, fw in topo["firewalls"].items():
        for server in fw["outside"]:
            if server in inside_of:
                c.fail(f"firewalls.{name}.outside", f"servers that are not inside a firewall ({server} is inside "
                       f"{inside_of[server]})")
    for name, host in topo["management_hosts"].items():
        if host.get("address") in addresses:
            c.fail(f"management_hosts.{name}.address", f"an address not used by {addresses[host['address']]}",
                   host["address"])


def _traffic(c: _Checker, value: Any, servers: Mapping[str, Any]) -> List[Dict[str, Any]]:
    if not isinstance(value, list):
        c.fail("traffic", "a list of {from, to, per_minute}", value)
    out, seen = [], set()
    for index, t in enumerate(value):
        key = f"traffic[{index}]"
        t = c.mapping(t, key, ["from", "to", "per_minute"], required=["from", "to", "per_minute"])
        for field in ("from", "to"):
            if t[field] not in servers:
                c.fail(f"{key}.{field}", "the name of a server defined in this file", t[field])
        if t["from"] == t["to"]:
            c.fail(f"{key}.to", "a server other than 'from'", t["to"])
        if (t["from"], t["to"]) in seen:
            c.fail(key, f"one entry per (from, to) pair ({t['from']} -> {t['to']} twice)")
        seen.add((t["from"], t["to"]))
        out.append({"from": t["from"], "to": t["to"], "per_minute": c.number(t["per_minute"], f"{key}.per_minute")})
    return out


# -- generator ----------------------------------------------------------------------------------
def _generated_addresses(n_links: int, firewalls: int) -> Dict[str, List[str]]:
    """Documentation-range addresses: IPv4 (192.0.2.0/24 inside, 198.51.100.0/24 outside) for up to
    100 links behind at most 9 firewalls (the interfaces take .1 to .9), else IPv6 (2001:db8::/32)."""
    if n_links <= 100 and firewalls <= 9:
        return {"inside": [f"192.0.2.{10 + i}" for i in range(n_links)],
                "internal_alias": [f"192.0.2.{120 + i}" for i in range(n_links)],
                "outside": [f"198.51.100.{10 + i}" for i in range(n_links)],
                "external_alias": [f"198.51.100.{120 + i}" for i in range(n_links)],
                "internal": [f"192.0.2.{1 + f}" for f in range(firewalls)],
                "external": [f"198.51.100.{1 + f}" for f in range(firewalls)]}
    return {"inside": [f"2001:db8:1::{0x1000 + i:x}" for i in range(n_links)],
            "internal_alias": [f"2001:db8:1::{0x8000 + i:x}" for i in range(n_links)],
            "outside": [f"2001:db8:2::{0x1000 + i:x}" for i in range(n_links)],
            "external_alias": [f"2001:db8:2::{0x8000 + i:x}" for i in range(n_links)],
            "internal": [f"2001:db8:1::{1 + f:x}" for f in range(firewalls)],
            "external": [f"2001:db8:2::{1 + f:x}" for f in range(firewalls)]}


def generate(n_links: int, healthy: bool = False, firewalls: int = 1, organization: str = "CONTOSO",
             inside_per_minute: float = 0.1, outside_per_minute: float = 2.0, time_scale: float = 60) -> Dict[str, Any]:
    """A topology with ``n_links`` KB links (EXIN001 inside <-> EXOUT001 outside, ...) spread over
    ``firewalls`` firewalls (FW1..FWk, round robin). Every link goes through a pair of GSPs on 102:
    the first link of a firewall on its interface addresses, the others on alias addresses
    (``passers[].address``). The KB fault is present (transparency on) unless ``healthy``
    (transparency off). The result is validated before it is returned."""
    if n_links < 1 or not 1 <= firewalls <= n_links:
        raise ValueError("need n_links >= 1 and 1 <= firewalls <= n_links")
    addr = _generated_addresses(n_links, firewalls)
    servers: Dict[str, Any] = {}
    fws: Dict[str, Any] = {
        f"FW{f + 1}": {"product": "raptor-eagle-5", "inside": [], "outside": [],
                       "interfaces": {"internal": addr["internal"][f], "external": addr["external"][f]},
                       "passers": [], "routed_paths": [], "client_transparency": not healthy}
        for f in range(firewalls)}
    traffic = []
    for i in range(n_links):
        num = f"{i + 1:03d}"
        fw = fws[f"FW{i % firewalls + 1}"]
        first = not fw["inside"]
        internal = fw["interfaces"]["internal"] if first else addr["internal_alias"][i]
        external = fw["interfaces"]["external"] if first else addr["external_alias"][i]
        inside, outside = f"EXIN{num}", f"EXOUT{num}"
        for name, site, address, peer, peer_site, stack in (
                (inside, f"INSIDE{num}", addr["inside"][i], outside, f"OUTSIDE{num}", internal),
                (outside, f"OUTSIDE{num}", addr["outside"][i], inside, f"INSIDE{num}", external)):
            servers[name] = {
                "site": site, "address": address, "fqdn": f"{name.lower()}.{site.lower()}.contoso.example",
                "exchange": "5.5",
                "winrm": {"scheme": "http", "auth": ["basic", "ntlm"], "username": f"{organization}\\xcon",
                          "password": "S3cret!", "rights": "admin"},
                "connectors": [{"name": f"TO-{peer_site}", "display_name": f"X.400 to {peer_site.title()}",
                                "remote_mta": peer, "remote_password": "mta-pw", "stack_address": stack,
                                "address_type": "ip", "schedule": "always", "two_way_alternate": True, "cost": 1,
                                "connected_site": peer_site}],
                "queued": {f"TO-{peer_site}": 0}}
        fw["inside"].append(inside)
        fw["outside"].append(outside)
        ext = {"port": 102, "interface": "external", "target": inside}
        intl = {"port": 102, "interface": "internal", "target": outside}
        if not first:
            ext["address"], intl["address"] = external, internal
        fw["passers"] += [ext, intl]
        traffic.append({"from": outside, "to": inside, "per_minute": outside_per_minute})
        traffic.append({"from": inside, "to": outside, "per_minute": inside_per_minute})
    data = {"version": 1, "organization": organization, "time_scale": time_scale,
            "servers": servers, "firewalls": fws, "traffic": traffic}
    validate(copy.deepcopy(data), source=f"<generate({n_links})>")
    return data
