"""Link discovery and the firewall/connector topology queries (see the package docstring, "Links")."""

from __future__ import annotations

import contextlib
import contextvars

from xcon.diagnose.codes import X400_PORT, norm

# -- the firewalls' passers by target, for one analysis ---------------------------------------------
# Every link asks which of the firewall's passers relay to its servers; a fleet's firewall has every
# link's passers, so scanning them for each link grew with the square of the fleet (issue 19).
# analyse() (xcon.actions.diagnose) indexes each firewall once for its run: `indexed(firewalls)`.
_INDEX = contextvars.ContextVar("xcon_firewall_index", default=None)


class _Passers:
    """One firewall's passers by upper-cased target, their ports and their alias addresses."""

    def __init__(self, firewall):
        self.firewall = firewall
        self.source = firewall.get("passers")
        self.passers = list(self.source or [])
        self.ports = [int(p.get("port", X400_PORT)) for p in self.passers]   # a bad port: no index, scans as before
        self.by_target = {}
        for index, passer in enumerate(self.passers):
            self.by_target.setdefault(norm(passer.get("target")), []).append(index)
        self.addresses = {norm(p.get("address")) for p in self.passers if p.get("address")}
        self.by_address = {}
        for index, passer in enumerate(self.passers):
            self.by_address.setdefault(norm(passer.get("address")), []).append(index)
        self.routed_source = firewall.get("routed_paths")
        self.routed = list(self.routed_source or [])
        self.routed_ports = [int(p.get("port", X400_PORT)) for p in self.routed]
        self.by_host, self.hostless = {}, []
        for index, path in enumerate(self.routed):
            hosts = {norm(h) for h in path.get("hosts") or []}
            for host in hosts:
                self.by_host.setdefault(host, []).append(index)
            if not hosts:
                self.hostless.append(index)

    def own_rules(self, ours, stacks, port):
        """A link's candidates on `port`, in the firewall's order: the passers relaying to one of
        `ours` or listening on one of `stacks`, the routed paths touching one of `ours` (and those
        naming no host).  xcon.topology keeps those of the link."""
        passers = sorted({i for key in ours for i in self.by_target.get(key, ())}
                         | {i for key in stacks for i in self.by_address.get(key, ())})
        routed = sorted({i for key in ours for i in self.by_host.get(key, ())} | set(self.hostless))
        return ([self.passers[i] for i in passers if self.ports[i] == port],
                [self.routed[i] for i in routed if self.routed_ports[i] == port])

    def to(self, targets, port):
        """The (passer, port) on `port` relaying to one of `targets` (upper-cased), in the firewall's order."""
        found = sorted({i for target in targets for i in self.by_target.get(target, ())})
        return [(self.passers[i], self.ports[i]) for i in found if self.ports[i] == port]


@contextlib.contextmanager
def indexed(firewalls):
    """Within the block, the passer queries below read `firewalls`' passers from an index built here
    (the firewalls must not change meanwhile; one that did is scanned again)."""
    index = {}
    for firewall in firewalls or []:
        try:
            index[id(firewall)] = _Passers(firewall)
        except (AttributeError, TypeError, ValueError):
            continue
    token = _INDEX.set(index)
    try:
        yield
    finally:
        _INDEX.reset(token)


def index_of(firewall):
    """The firewall's index of the analysis under way (`indexed`), or None: scan it."""
    entry = (_INDEX.get() or {}).get(id(firewall)) if firewall else None
    if entry is None or entry.firewall is not firewall or firewall.get("passers") is not entry.source \
            or len(entry.source or []) != len(entry.passers) or firewall.get("routed_paths") is not entry.routed_source \
            or len(entry.routed_source or []) != len(entry.routed):
        return None
    return entry


# -- server and connector helpers -----------------------------------------------------------------
def identities(server, name=None):
    """Every upper-cased way a connector may address `server`: NetBIOS name, IP address, FQDN."""
    server = server or {}
    values = {norm(name), norm(server.get("name")), norm(server.get("address")), norm(server.get("fqdn"))}
    values.discard("")
    return values


def address_for(server, name, address_type="ip"):
    """The Stack address to give a connector that must reach `server` directly."""
    server = server or {}
    order = ("fqdn", "address") if address_type == "hostname" else ("address", "fqdn")
    for key in order:
        if server.get(key):
            return server[key]
    return server.get("name") or name


def connectors_to(server, peer, peer_server=None):
    """The server's connectors whose remote MTA is `peer`, sorted by name."""
    wanted = {norm(peer), norm((peer_server or {}).get("name"))} - {""}
    found = [c for c in (server or {}).get("connectors") or [] if norm(c.get("remote_mta")) in wanted]
    return sorted(found, key=lambda c: norm(c.get("name")))


def is_remote(connector):
    return (connector or {}).get("schedule") == "remote"


def _primary(connectors):
    for connector in connectors:
        if not is_remote(connector):
            return connector
    return connectors[0] if connectors else None


def _reverse(connectors, primary):
    for connector in connectors:
        if connector is not primary and is_remote(connector):
            return connector
    return None


def firewall_between(firewalls, a, b):
    """The firewall with one of the servers inside and the other outside, and which is inside."""
    for firewall in sorted(firewalls or [], key=lambda f: norm(f.get("name"))):
        inside = {norm(h) for h in firewall.get("inside") or []}
        outside = {norm(h) for h in firewall.get("outside") or []}
        if norm(a) in inside and norm(b) in outside:
            return firewall, a
        if norm(b) in inside and norm(a) in outside:
            return firewall, b
    return None, None


def interface_addresses(firewall):
    """Upper-cased addresses the firewall answers on: its interfaces (internal, external, any
    other) and the alias addresses its service passers listen on (``passers[].address``)."""
    firewall = firewall or {}
    found = {norm(v) for v in (firewall.get("interfaces") or {}).values() if v}
    entry = index_of(firewall)
    if entry is not None:
        return found | entry.addresses
    return found | {norm(p.get("address")) for p in firewall.get("passers") or [] if p.get("address")}


def stack_keys(connector):
    """Upper-cased forms of a connector's Stack address: the address as written and, for a host
    name, the addresses the Windows host's resolver gave for it (``stack_resolved``)."""
    connector = connector or {}
    keys = {norm(connector.get("stack_address"))} | {norm(a) for a in connector.get("stack_resolved") or []}
    keys.discard("")
    return keys


def stack_in(connector, addresses):
    """Whether the connector's Stack address (or what its host name resolves to) is one of `addresses`."""
    return bool(stack_keys(connector) & set(addresses))


def link_port(servers, link):
    """The link's MTA TCP port: the inside server's RFC1006 port, else the outside's, else 102."""
    for role in ("inside", "outside"):
        port = ((servers or {}).get(link[role]["host"]) or {}).get("mta_port")
        if port:
            return int(port)
    return X400_PORT


def listen_addresses(firewall, which, targets=None, port=X400_PORT):
    """Upper-cased addresses on the firewall's ``which`` side (internal/external) that a connector's
    Stack may name: the interface address, and the alias address of each passer on the MTA port on that
    side (only those relaying to one of ``targets``, upper-cased names/addresses, when given)."""
    found = {interface_address(firewall, which)} - {""}
    entry = index_of(firewall)
    if entry is not None and targets is not None:
        for passer, _ in entry.to(targets, port):
            if passer.get("address") and norm(passer.get("interface")) == norm(which):
                found.add(norm(passer.get("address")))
        return found
    for passer in (firewall or {}).get("passers") or []:
        if (passer.get("address") and norm(passer.get("interface")) == norm(which)
                and int(passer.get("port", X400_PORT)) == port
                and (targets is None or norm(passer.get("target")) in targets)):
            found.add(norm(passer.get("address")))
    return found


def interface_address(firewall, which):
    return norm(((firewall or {}).get("interfaces") or {}).get(which))


def relay_passers(firewall, servers, link, port=None):
    """The firewall's passers on the link's MTA port (102 by default) that relay to either server."""
    port = port or link.get("mta_port") or X400_PORT
    targets = set()
    for side in ("inside", "outside"):
        host = link[side]["host"]
        targets |= identities(servers.get(host), host)
    entry = index_of(firewall)
    if entry is not None:
        return [passer for passer, _ in entry.to(targets, port)]
    return [p for p in (firewall or {}).get("passers") or []
            if int(p.get("port", X400_PORT)) == port and norm(p.get("target")) in targets]


def has_routed_path(firewall, a, b, port=X400_PORT):
    pair = {norm(a), norm(b)}
    return any({norm(h) for h in p.get("hosts") or []} == pair and int(p.get("port", X400_PORT)) == port
               for p in (firewall or {}).get("routed_paths") or [])


def firewall_dependents(link, servers, firewall):
    """Connectors on either server of the link, other than its two primaries, whose Stack is a
    firewall interface: removing the 102 relay would cut them off."""
    addresses = interface_addresses(firewall)
    primaries = {(norm(link["inside"]["host"]), norm(link["inside"].get("connector"))),
                 (norm(link["outside"]["host"]), norm(link["outside"].get("connector")))}
    found = []
    for side in ("inside", "outside"):
        host = link[side]["host"]
        for connector in (servers.get(host) or {}).get("connectors") or []:
            if (norm(host), norm(connector.get("name"))) in primaries:
                continue
            if stack_in(connector, addresses):
                found.append({"host": host, "connector": connector.get("name"),
                              "stack_address": connector.get("stack_address"),
                              "remote_mta": connector.get("remote_mta")})
    return sorted(found, key=lambda d: (norm(d["host"]), norm(d["connector"])))


# -- link discovery -------------------------------------------------------------------------------
def discover_links(servers, firewalls):
    """Every pair of servers joined by connectors naming each other; see the module docstring."""
    names = sorted(servers, key=norm)
    links = []
    for a, b in _named_pairs(servers, names):
        a_to_b = connectors_to(servers[a], b, servers[b])
        b_to_a = connectors_to(servers[b], a, servers[a])
        if not a_to_b and not b_to_a:
            continue
        firewall, inside = firewall_between(firewalls, a, b)
        if firewall is None:
            inside = a
        outside = b if inside == a else a
        links.append(_new_link(servers, inside, outside, firewall))
    return sorted(links, key=lambda link: norm(link["id"]))


def _named_pairs(servers, names):
    """The pairs (a, b) of `names` (a before b) where a connector of one names the other as its
    remote MTA (by inventory name or server name, as connectors_to matches), in the order of
    `names`: found from an index of those names, not by trying every pair of the fleet."""
    by_key = {}
    for name in names:
        for key in {norm(name), norm((servers[name] or {}).get("name"))} - {""}:
            by_key.setdefault(key, []).append(name)
    order = {name: index for index, name in enumerate(names)}
    pairs = set()
    for a in names:
        for connector in (servers[a] or {}).get("connectors") or []:
            for b in by_key.get(norm(connector.get("remote_mta")), ()):
                if b != a:
                    pairs.add((a, b) if order[a] < order[b] else (b, a))
    return sorted(pairs, key=lambda pair: (order[pair[0]], order[pair[1]]))


def _new_link(servers, inside, outside, firewall):
    in_conns = connectors_to(servers[inside], outside, servers[outside])
    out_conns = connectors_to(servers[outside], inside, servers[inside])
    in_primary, out_primary = _primary(in_conns), _primary(out_conns)
    reverse = _reverse(in_conns, in_primary)
    return {
        "id": f"{inside}<->{outside}",
        "inside": {"host": inside, "connector": (in_primary or {}).get("name"),
                   "reverse_connector": (reverse or {}).get("name")},
        "outside": {"host": outside, "connector": (out_primary or {}).get("name")},
        "firewall": (firewall or {}).get("name"),
        "status": "unknown",
        "findings": [],
        "recommended_workaround": "none",
        "reason": "",
        "changes": [],
        "verification": {"state": "not_run", "details": {}},
    }

