"""Validation of a topology's firewalls: their facts (and the documented ones) and the checks across
firewalls and servers (see topology.py)."""
from __future__ import annotations

from typing import Any, Dict, Mapping

from .topology_checker import FIREWALL_FACTS, HOST_RE, PRODUCT_RE, _Checker

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
                     "target": c.reference(p["target"], f"{pkey}.target", servers, "server")}
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

