"""Validation of a topology's servers: WinRM, the server's own keys, its event keys, its connectors,
and the checks across servers (see topology.py)."""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, Mapping

from .base import MTA_SERVICE, OTHER_SERVICES
from .topology_checker import (
    ADDRESS_TYPES, AUTHS, EXCHANGE_VERSIONS, HOST_RE, RIGHTS, SCHEDULES, SCHEMES, SITE_RE, _Checker)

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
                  + list(EVENT_KEYS) + list(WINDOWS_KEYS), required=["site", "address"])
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
    if manager is not None and (not isinstance(manager, str) or manager not in managers):
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
    out.update(_windows_keys(c, key, s))
    return out


WINDOWS_KEYS = ("services", "mta_stop_seconds", "ldap_size_limit", "adsi_schema")
EXCHANGE_SERVICES = (MTA_SERVICE,) + OTHER_SERVICES


def _windows_keys(c: _Checker, key: str, s: Mapping) -> Dict[str, Any]:
    """Windows-side behaviour: services beside the MTA (with their dependencies and stop times), how
    long the MTA takes to stop, and the most entries the directory returns for an unpaged search."""
    out: Dict[str, Any] = {"mta_stop_seconds": c.number(s.get("mta_stop_seconds", 5), f"{key}.mta_stop_seconds"),
                           "ldap_size_limit": c.integer(s.get("ldap_size_limit", 100), f"{key}.ldap_size_limit",
                                                        1, 10_000_000),
                           "adsi_schema": c.enum(s.get("adsi_schema", "available"), f"{key}.adsi_schema",
                                                 ("available", "unavailable"))}
    services = s.get("services") or []
    if not isinstance(services, list):
        c.fail(f"{key}.services", "a list of {name, depends_on, stop_seconds, running}", services)
    declared = [svc.get("name") for svc in services if isinstance(svc, dict)]
    known = {n.casefold() for n in EXCHANGE_SERVICES} | {str(n).casefold() for n in declared}
    out["services"] = []
    for index, svc in enumerate(services):
        skey = f"{key}.services[{index}]"
        svc = c.mapping(svc, skey, ["name", "depends_on", "stop_seconds", "running"], required=["name"])
        name = c.string(svc["name"], f"{skey}.name", 256)
        if name.casefold() in {n.casefold() for n in EXCHANGE_SERVICES} or \
                [str(n).casefold() for n in declared].count(name.casefold()) > 1:
            c.fail(f"{skey}.name", "a service name not used by another service of this server", name)
        depends = svc.get("depends_on") or []
        if not isinstance(depends, list) or not all(isinstance(d, str) and d.casefold() in known for d in depends):
            c.fail(f"{skey}.depends_on", "a list of this server's service names (MSExchangeMTA, ...)", depends)
        out["services"].append({"name": name, "depends_on": list(depends),
                                "stop_seconds": c.number(svc.get("stop_seconds", 5), f"{skey}.stop_seconds"),
                                "running": c.boolean(svc.get("running", True), f"{skey}.running")})
    _no_dependency_cycle(c, key, out["services"])
    return out


def _no_dependency_cycle(c: _Checker, key: str, services) -> None:
    graph = {svc["name"].casefold(): [d.casefold() for d in svc["depends_on"]] for svc in services}

    def reaches(start: str, node: str, seen: set) -> bool:
        for nxt in graph.get(node, []):
            if nxt == start or (nxt not in seen and reaches(start, nxt, seen | {nxt})):
                return True
        return False

    for index, svc in enumerate(services):
        if reaches(svc["name"].casefold(), svc["name"].casefold(), set()):
            c.fail(f"{key}.services[{index}].depends_on", "dependencies without a cycle", svc["depends_on"])


EVENT_KEYS = ("mta_build", "reverse_lookup", "message_dll", "event_log", "event_log_size", "clock_offset_minutes")
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
    # A busy Application log: entries of other sources a read walks through; and the server's clock,
    # minutes ahead of (or behind) the management host's (the lab's) clock.
    out["event_log_size"] = c.integer(s.get("event_log_size", 0), f"{key}.event_log_size", 0, 40_000)
    out["clock_offset_minutes"] = c.integer(s.get("clock_offset_minutes", 0), f"{key}.clock_offset_minutes",
                                            -10_080, 10_080)
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
    site, site_key = v.get("connected_site"), f"{key}.connected_site"
    if site is None:  # the remote server's site, named by its own key path when it is wrong
        site_key = f"servers.{out['remote_mta']}"
        site = c.mapping(servers[out["remote_mta"]], site_key, required=["site"])["site"]
        site_key += ".site"
    out["connected_site"] = c.string(site, site_key, 64, SITE_RE, "a site name")
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


