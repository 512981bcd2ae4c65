"""Load and validate a lab topology (``shared/spec/lab.md``, ``version: 1``); generate N-link ones.

:func:`load` / :func:`validate` return a *normalised* copy (every optional key filled with its
default) or raise :class:`TopologyError` naming the file, the key path
(``servers.EXIN.connectors[0].schedule``) and what was expected. Nothing is guessed: unknown keys,
wrong types, bad enums and dangling references are all errors.

The vocabulary and the checker are in ``topology_checker.py``, the servers' and the firewalls'
validation in ``topology_servers.py`` and ``topology_firewalls.py``.

Keys added to the spec's format (all optional):

* top level: ``start_time`` (ISO-8601 UTC, default 2026-01-05T09:00:00Z), ``backlog_threshold``
  (queue length that logs 659, default 10), ``description``, ``management_hosts``, ``replication``
  (``{intra_site_minutes: 5, intersite_minutes: 180}``: when a change made on one server reaches the
  other servers of its site, and those of other sites; see replication.py);
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
  optional: the host's DNS name, default ``<name>.<realm's DNS domain>``; ``ipc_sessions`` optional:
  ``{SERVER: 'DOMAIN\\user'}``, sessions the host already has, as another account: WNetAddConnection2
  with other credentials then fails with 1219);
* ``firewalls.F.passers[].address``: an alias address on that interface the GSP listens on
  (default: the interface address), so one firewall can carry several GSP links;
* ``firewalls.F.documented``: the facts an out-of-date record claims (same keys as the firewall).
* ``servers.X``: ``ldap_port`` (where the Exchange 5.5 directory answers LDAP, default 389),
  ``domain_controller`` (the server is a Windows 2000 domain controller: Active Directory answers
  LDAP on 389, Q224447 / Q250989; default false), ``mta_port`` (the MTA's TCP port, the registry
  value "RFC1006 Port Number", Q161931; default 102 = value absent);
* ``servers.X``: ``event_log_size`` (entries of other sources in the Application log, spread over
  the week before ``start_time``: a read that does not stop at its window walks them all; snapshot
  ``event_log_reads`` counts the entries event_query walked), ``clock_offset_minutes`` (the server's
  clock against the lab's, i.e. a management host's: it stamps the server's events and is the
  ``now`` of event_query, default 0);
* ``*.winrm``: ``dotnet35`` (the host has .NET Framework 3.5, default true; Windows PowerShell 2.0
  needs only .NET 2.0), ``codepage`` (the host's ANSI code page, in which it decodes Basic
  credentials; default 1252);
* ``firewalls.F.interface_names``: DNS names of the interfaces (``{internal: NAME, external: NAME}``),
  which every host's resolver knows (a Stack address may name them).
"""
from __future__ import annotations

import copy
import datetime as _dt
import re
from typing import Any, Dict, List, Mapping

import yaml

from .topology_checker import DEFAULT_START, NAME_RE, SITE_RE, _Checker
from .topology_checker import TopologyError  # noqa: F401  (re-exported: load/validate raise it)
from .topology_firewalls import _cross_firewall_checks, _firewall
from .topology_servers import _cross_server_checks, _server, _winrm


# -- loading ------------------------------------------------------------------------------------
def load(path: str) -> Dict[str, Any]:
    """Read and validate a topology file."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise TopologyError(path, "", f"a readable file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise TopologyError(path, "", f"UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except yaml.YAMLError as exc:
        raise TopologyError(path, "", f"valid YAML ({str(exc).splitlines()[0]})") from None
    return validate(data, source=path)


def validate(data: Any, source: str = "<topology>") -> Dict[str, Any]:
    """Validate topology data; return a normalised deep copy with defaults filled in."""
    c = _Checker(source)
    top = c.mapping(data, "", ["version", "organization", "time_scale", "servers", "firewalls", "traffic",
                               "management_hosts", "start_time", "backlog_threshold", "description",
                               "replication"],
                    required=["version", "organization", "servers"])
    if top["version"] != 1 or isinstance(top["version"], bool):
        c.fail("version", "1", top["version"])
    out: Dict[str, Any] = {"version": 1}
    out["organization"] = c.string(top["organization"], "organization", 64, SITE_RE,
                                   "an organisation name (no '/', '=')")
    out["time_scale"] = c.number(top.get("time_scale", 60), "time_scale")
    out["backlog_threshold"] = c.integer(top.get("backlog_threshold", 10), "backlog_threshold", 1, 1_000_000)
    start = top.get("start_time", DEFAULT_START)
    if isinstance(start, _dt.date):
        c.fail("start_time", "a quoted time like '2026-01-05T09:00:00Z' (YAML reads an unquoted one as a "
               "timestamp)", str(start))
    if not isinstance(start, str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", start):
        c.fail("start_time", "an ISO-8601 UTC time like 2026-01-05T09:00:00Z", start)
    try:
        _dt.datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        c.fail("start_time", "a valid date and time", start)
    out["start_time"] = start
    if "description" in top:
        out["description"] = c.string(top["description"], "description", 4096)
    replication = c.mapping(top.get("replication") or {}, "replication", ["intra_site_minutes", "intersite_minutes"])
    out["replication"] = {
        "intra_site_minutes": c.integer(replication.get("intra_site_minutes", 5), "replication.intra_site_minutes",
                                        0, 7 * 24 * 60),
        "intersite_minutes": c.integer(replication.get("intersite_minutes", 180), "replication.intersite_minutes",
                                       0, 7 * 24 * 60)}

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
        host = c.mapping(host, key, ["winrm", "manages", "address", "fqdn", "ipc_sessions"], required=["winrm", "manages"])
        entry = {"winrm": _winrm(c, host["winrm"], f"{key}.winrm"),
                 "manages": c.names(host["manages"], f"{key}.manages", servers, "server")}
        if not entry["manages"]:
            c.fail(f"{key}.manages", "at least one server")
        if host.get("address") is not None:
            entry["address"] = c.ip(host["address"], f"{key}.address")
        if host.get("fqdn") is not None:
            entry["fqdn"] = c.string(host["fqdn"], f"{key}.fqdn", 255)
        if host.get("ipc_sessions") is not None:
            sessions = c.mapping(host["ipc_sessions"], f"{key}.ipc_sessions")
            entry["ipc_sessions"] = {server: c.string(user, f"{key}.ipc_sessions.{server}", 256)
                                     for server, user in sessions.items()}
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


def _traffic(c: _Checker, value: Any, servers: Mapping[str, Any]) -> List[Dict[str, Any]]:
    if not isinstance(value, list):
        c.fail("traffic", "a list of {from, to, per_minute}", value)
    out, seen = [], set()
    for index, t in enumerate(value):
        key = f"traffic[{index}]"
        t = c.mapping(t, key, ["from", "to", "per_minute"], required=["from", "to", "per_minute"])
        for field in ("from", "to"):
            c.reference(t[field], f"{key}.{field}", servers, "server")
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
