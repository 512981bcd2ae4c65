"""Evidence access for the checks: one link's two sides (server, connectors, events) and its firewall."""

from __future__ import annotations

from xcon.diagnose.codes import (INSIDE_REFUSAL_ID, NO_MATCH_ID, OUTSIDE_REFUSAL_IDS, UNREACHABLE, merged_options,
                                 norm)
from xcon.diagnose.links import identities, interface_address, is_remote, link_port, listen_addresses

class Side:
    """One side of a link: its server, connectors and evidence, with evidence queries."""

    def __init__(self, link, role, servers):
        self.role = role
        self.host = link[role]["host"]
        self.server = servers.get(self.host) or {}
        self.error = self.server.get("error") if self.host in servers else {
            "code": UNREACHABLE, "reason": "not in the audited servers"}
        self.readable = not self.error
        self.identities = identities(self.server, self.host)
        self.evidence = self.server.get("evidence")
        self.primary = self.connector(link[role].get("connector"))
        self.reverse = self.connector(link[role].get("reverse_connector"))

    def connector(self, name):
        if not name:
            return None
        for connector in self.server.get("connectors") or []:
            if norm(connector.get("name")) == norm(name):
                return connector
        return None

    @property
    def link_connectors(self):
        return [c for c in (self.primary, self.reverse) if c]

    def events(self, ids, connectors=None, unattributed=False):
        """Events with one of `ids`; with `connectors`, only those naming one of them (by RDN or
        X.500 DN), plus events naming no connector when `unattributed`."""
        ids = {int(i) for i in ids}
        names = dn_set = None
        if connectors is not None:
            names = {norm(c.get("name")) for c in connectors}
            dn_set = {norm(c.get("x500_dn")) for c in connectors} - {""}
        found = []
        for event in (self.evidence or {}).get("events") or []:
            if int(event.get("id", 0)) not in ids:
                continue
            if names is not None:
                named = norm(event.get("connector"))
                if named or norm(event.get("dn")) in dn_set:
                    if named not in names and norm(event.get("dn")) not in dn_set:
                        continue
                elif not unattributed:
                    continue
            found.append(event)
        return found

    def count(self, ids, connectors=None, unattributed=False):
        """Number of matching events; evidence without an event list falls back to its counts."""
        evidence = self.evidence or {}
        if evidence.get("events"):
            return len(self.events(ids, connectors, unattributed))
        return sum(int((evidence.get("counts") or {}).get(str(i), 0) or 0) for i in ids)

    def counts_by_id(self, ids, connectors=None, unattributed=False):
        return {str(i): self.count((i,), connectors, unattributed) for i in ids}

    def addresses_9301(self):
        evidence = self.evidence or {}
        found = [a for a in evidence.get("addresses_9301") or []]
        found += [e.get("address") for e in self.events((NO_MATCH_ID,)) if e.get("address")]
        return sorted({norm(a) for a in found if a})

    def decoded_9301(self, outside_identities=()):
        """Each distinct 9301 address as logged (hex) and decoded, and whether it is the peer's."""
        seen, out = set(), []
        for event in self.events((NO_MATCH_ID,)):
            address = event.get("address")
            if not address or norm(address) in seen:
                continue
            seen.add(norm(address))
            out.append({"hex": event.get("address_hex"), "address": address,
                        "outside_server": norm(address) in outside_identities})
        for address in (self.evidence or {}).get("addresses_9301") or []:
            if norm(address) not in seen:
                seen.add(norm(address))
                out.append({"hex": None, "address": address, "outside_server": norm(address) in outside_identities})
        return out

    def queue(self, connector):
        queues = (self.evidence or {}).get("queues") or {}
        for name, value in queues.items():
            if norm(name) == norm((connector or {}).get("name")):
                return int(value or 0)
        return 0



class LinkContext:
    """Everything the checks need about one link."""

    def __init__(self, link, servers, firewall, options):
        self.link = link
        self.servers = servers
        self.firewall = firewall
        self.options = merged_options(options)
        self.inside = Side(link, "inside", servers)
        self.outside = Side(link, "outside", servers)
        self.sides = (self.inside, self.outside)
        self.kb = None  # the XCON-TRANSPARENCY-REFUSAL finding, once assessed
        self.port = link_port(servers, link)   # the MTAs' TCP port (RFC1006 Port Number, 102 by default)
        link["mta_port"] = self.port

    def peer(self, side):
        return self.outside if side is self.inside else self.inside

    def facing_interface(self, side):
        return interface_address(self.firewall, "internal" if side is self.inside else "external")

    def facing_addresses(self, side):
        """The firewall addresses facing ``side`` that relay to its peer: the interface address and
        the aliases of the passers on that side whose target is the peer."""
        cache = self.__dict__.setdefault("_facing", {})
        which = "internal" if side is self.inside else "external"
        if which not in cache:
            cache[which] = listen_addresses(self.firewall, which, self.peer(side).identities, self.port)
        return cache[which]

    @property
    def fully_read(self):
        return self.inside.readable and self.outside.readable

    def never_sides(self):
        return [s for s in self.sides if s.primary and s.primary.get("schedule") == "never"]

    def both_remote(self):
        return all(s.primary and is_remote(s.primary) for s in self.sides)

    def outside_triple(self):
        return self.outside.events(OUTSIDE_REFUSAL_IDS, [self.outside.primary]) if self.outside.primary else []

    def outside_triple_count(self):
        return self.outside.count(OUTSIDE_REFUSAL_IDS, [self.outside.primary]) if self.outside.primary else 0

    def inside_1293_count(self):
        return self.inside.count((INSIDE_REFUSAL_ID,), self.inside.link_connectors, unattributed=True)

    def outside_address_seen_by_inside(self):
        return sorted(set(self.inside.addresses_9301()) & self.outside.identities)

