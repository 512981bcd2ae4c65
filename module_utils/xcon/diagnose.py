"""Pair X.400 connectors into links, diagnose each link and choose its workaround (pure Python).

Inputs are the normalized shapes of docs/design.md: per server ``{"name", "address", "fqdn",
"connectors": [connector], "evidence": evidence | None, "error": None | {"code", "reason"}}`` and
the firewall facts.  Nothing here touches the network; the same functions re-analyse saved runs.

Links
-----
A link is a pair of servers where a connector of one names the other as its remote MTA (compared
case-insensitively with the server name).  A server that could not be read still forms a link when
its peer names it, so that the link can be reported ``unknown``.  The firewall whose ``inside``
holds one server and whose ``outside`` holds the other decides which side is which; with no such
firewall the alphabetically first server is called "inside" and the link has no firewall.
Per side the *primary* connector is the first (by name) that is not remote-initiated, else the
first; on the inside, a further remote-initiated connector to the outside server is the *reverse*
connector (KB workaround 2).  Link id: ``INSIDE<->OUTSIDE``; links are sorted by id.

Findings (one documentation page each in docs/findings/)
--------------------------------------------------------
=====================================  ===========  ==============================================
code                                   severity     raised when
=====================================  ===========  ==============================================
XCON-TRANSPARENCY-REFUSAL              error        KB Q196381 observed: the inside connector's
                                                    Stack is the firewall's internal address, the
                                                    outside MTA logs 1290/289/1294 for its
                                                    connector (or has a queue) and the inside MTA
                                                    logs 1293 and/or 9301 with the outside server's
                                                    own address.  Evidence outranks the declared
                                                    transparency value.
XCON-TRANSPARENCY-REFUSAL              warning      expected, not observed: the configuration is
                                                    the KB's (both Stacks at the firewall, a GSP on
                                                    102 to the inside server, transparency declared
                                                    on) or only the outside's refusals are known,
                                                    and the evidence of a side is missing.
                                                    ``evidence.basis`` says which.
XCON-SCHEDULE-NEVER                    error        a primary connector is scheduled Never (the
                                                    peer's 1290 triple is then explained by it and
                                                    never reported as the KB fault)
XCON-BOTH-REMOTE-INITIATED             error        both primaries are remote-initiated
XCON-TWA-OFF                           error        two-way alternate off while the link relies on
                                                    it (a connector of the link is remote-initiated
                                                    or the outside's associations are refused)
XCON-TWA-OFF                           warning      two-way alternate off otherwise (KB
                                                    precondition not met)
XCON-SCHEDULE-NOT-ALWAYS               warning      a primary is Selected times, or only one side
                                                    is remote-initiated
XCON-STACK-ADDRESS                     warning      a primary's Stack is neither the firewall
                                                    interface facing its server nor the peer
                                                    server's address, FQDN or name
XCON-QUEUE-BACKLOG                     warning      a queue of a link connector > queue_threshold
XCON-FIREWALL-FACTS-CONTRADICTED       warning      the declared firewall facts disagree with the
                                                    MTA evidence
XCON-REVERSE-CONNECTOR-PRESENT         info         a reverse connector points at the outside server
XCON-REVERSE-CONNECTOR-WRONG-STACK     warning      a reverse connector exists but its Stack is not
                                                    the outside server (it cannot match)
XCON-REFUSALS-UNEXPLAINED              warning      the outside logs refusals but no cause above
                                                    explains them
XCON-CONNECTOR-MISSING                 error        a readable server has no connector to a peer
                                                    whose connector names it
XCON-UNREACHABLE / XCON-ACCESS-DENIED  unknown      a server of the link could not be read (any
                                                    other read failure keeps its own code, also
                                                    severity unknown)
=====================================  ===========  ==============================================

Status of a link
----------------
``error`` if any finding is an error; else ``unknown`` if any finding is unknown (a half-read link
is never ``ok`` and a warning on the readable half must not hide that); else ``warning`` if any
finding is a warning; else ``ok`` (info findings do not lower the status).

Workaround policy
-----------------
``select_workaround(link, requested, ...)`` returns ``(workaround, reason)``.  With ``auto``:

==============================================================  ================================
situation                                                       workaround
==============================================================  ================================
status ok, or no XCON-TRANSPARENCY-REFUSAL (Never, both         ``none`` (preconditions and
remote-initiated, TWA off, backlog ... are not the KB fault)    findings tell what to fix)
link not fully readable and no KB finding                       ``none``
KB fault and a reverse connector already exists (wrong Stack)   ``reverse_connector`` (repair it)
KB fault, a firewall with a known driver (raptor, nftables),    ``firewall_tunnel`` (the KB's
option firewall_changes_possible true, and no other connector   preferred workaround)
on either server depends on the firewall's 102 relay
KB fault otherwise                                              ``reverse_connector``
never chosen by auto                                            ``transparency_off`` (side effect
                                                                on every server behind the
                                                                firewall; explicit request only)
==============================================================  ================================

An explicit request (``reverse_connector``, ``firewall_tunnel``, ``transparency_off``) is honoured
on links that show the KB fault (error or expected) or where that workaround is already partly in
place (so a re-run completes it); elsewhere it yields ``none`` with the reason.  ``none`` means
audit only.

Options (dict, all optional): ``queue_threshold`` (10), ``firewall_changes_possible`` (True),
``reverse_connector_name`` (""), ``address_type`` ("ip"), ``transparency_off_acknowledged``
(False) - the last three are used by xcon.plan.
"""

from __future__ import annotations

import copy

# -- codes and constants --------------------------------------------------------------------------
TRANSPARENCY_REFUSAL = "XCON-TRANSPARENCY-REFUSAL"
SCHEDULE_NEVER = "XCON-SCHEDULE-NEVER"
BOTH_REMOTE = "XCON-BOTH-REMOTE-INITIATED"
TWA_OFF = "XCON-TWA-OFF"
SCHEDULE_NOT_ALWAYS = "XCON-SCHEDULE-NOT-ALWAYS"
STACK_ADDRESS = "XCON-STACK-ADDRESS"
QUEUE_BACKLOG = "XCON-QUEUE-BACKLOG"
FACTS_CONTRADICTED = "XCON-FIREWALL-FACTS-CONTRADICTED"
REVERSE_PRESENT = "XCON-REVERSE-CONNECTOR-PRESENT"
REVERSE_WRONG_STACK = "XCON-REVERSE-CONNECTOR-WRONG-STACK"
REFUSALS_UNEXPLAINED = "XCON-REFUSALS-UNEXPLAINED"
CONNECTOR_MISSING = "XCON-CONNECTOR-MISSING"
UNREACHABLE = "XCON-UNREACHABLE"
ACCESS_DENIED = "XCON-ACCESS-DENIED"

FINDING_CODES = (
    TRANSPARENCY_REFUSAL, SCHEDULE_NEVER, BOTH_REMOTE, TWA_OFF, SCHEDULE_NOT_ALWAYS, STACK_ADDRESS,
    QUEUE_BACKLOG, FACTS_CONTRADICTED, REVERSE_PRESENT, REVERSE_WRONG_STACK, REFUSALS_UNEXPLAINED,
    CONNECTOR_MISSING, UNREACHABLE, ACCESS_DENIED,
)

SEVERITIES = ("error", "unknown", "warning", "info")  # most to least severe (also the sort order)
WORKAROUNDS = ("reverse_connector", "firewall_tunnel", "transparency_off", "none")
REQUESTABLE = ("auto",) + WORKAROUNDS
TUNNEL_DRIVERS = ("raptor", "nftables")

DEFAULT_OPTIONS = {
    "queue_threshold": 10,
    "firewall_changes_possible": True,
    "reverse_connector_name": "",
    "address_type": "ip",
    "transparency_off_acknowledged": False,
}

OUTSIDE_REFUSAL_IDS = (1290, 289, 1294)
INSIDE_REFUSAL_ID = 1293
NO_MATCH_ID = 9301
NEVER_ID = 37
BACKLOG_ID = 659
X400_PORT = 102
SAMPLE_LIMIT = 3


def merged_options(options):
    """DEFAULT_OPTIONS overlaid with the caller's (None values keep the default)."""
    merged = dict(DEFAULT_OPTIONS)
    merged.update({k: v for k, v in (options or {}).items() if v is not None})
    return merged


def norm(value):
    """Upper-cased, stripped text for case-insensitive comparison of names and addresses."""
    return str(value or "").strip().upper()


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


def _is_remote(connector):
    return (connector or {}).get("schedule") == "remote"


def _primary(connectors):
    for connector in connectors:
        if not _is_remote(connector):
            return connector
    return connectors[0] if connectors else None


def _reverse(connectors, primary):
    for connector in connectors:
        if connector is not primary and _is_remote(connector):
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
    return found | {norm(p.get("address")) for p in firewall.get("passers") or [] if p.get("address")}


def listen_addresses(firewall, which, targets=None):
    """Upper-cased addresses on the firewall's ``which`` side (internal/external) that a connector's
    Stack may name: the interface address, and the alias address of each TCP 102 passer on that
    side (only those relaying to one of ``targets``, upper-cased names/addresses, when given)."""
    found = {_interface(firewall, which)} - {""}
    for passer in (firewall or {}).get("passers") or []:
        if (passer.get("address") and norm(passer.get("interface")) == norm(which)
                and int(passer.get("port", X400_PORT)) == X400_PORT
                and (targets is None or norm(passer.get("target")) in targets)):
            found.add(norm(passer.get("address")))
    return found


def _interface(firewall, which):
    return norm(((firewall or {}).get("interfaces") or {}).get(which))


def relay_passers(firewall, servers, link):
    """The firewall's TCP 102 passers that relay to either server of the link."""
    targets = set()
    for side in ("inside", "outside"):
        host = link[side]["host"]
        targets |= identities(servers.get(host), host)
    return [p for p in (firewall or {}).get("passers") or []
            if int(p.get("port", X400_PORT)) == X400_PORT and norm(p.get("target")) in targets]


def has_routed_path(firewall, a, b):
    pair = {norm(a), norm(b)}
    return any({norm(h) for h in p.get("hosts") or []} == pair and int(p.get("port", X400_PORT)) == X400_PORT
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
            if norm(connector.get("stack_address")) in addresses:
                found.append({"host": host, "connector": connector.get("name"),
                              "stack_address": connector.get("stack_address"),
                              "remote_mta": connector.get("remote_mta")})
    return sorted(found, key=lambda d: (norm(d["host"]), norm(d["connector"])))


# -- link discovery -------------------------------------------------------------------------------
def discover_links(servers, firewalls):
    """Every pair of servers joined by connectors naming each other; see the module docstring."""
    names = sorted(servers, key=norm)
    links = []
    for index, a in enumerate(names):
        for b in names[index + 1:]:
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


# -- evidence access ------------------------------------------------------------------------------
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


def _samples(events):
    return [{"id": e.get("id"), "time": e.get("time"), "message": e.get("message")} for e in events[-SAMPLE_LIMIT:]]


def _finding(code, severity, host, connector, message, evidence=None):
    return {"code": code, "severity": severity, "host": host, "connector": connector,
            "message": message, "evidence": evidence or {}}


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

    def peer(self, side):
        return self.outside if side is self.inside else self.inside

    def facing_interface(self, side):
        return _interface(self.firewall, "internal" if side is self.inside else "external")

    def facing_addresses(self, side):
        """The firewall addresses facing ``side`` that relay to its peer: the interface address and
        the aliases of the passers on that side whose target is the peer."""
        cache = self.__dict__.setdefault("_facing", {})
        which = "internal" if side is self.inside else "external"
        if which not in cache:
            cache[which] = listen_addresses(self.firewall, which, self.peer(side).identities)
        return cache[which]

    @property
    def fully_read(self):
        return self.inside.readable and self.outside.readable

    def never_sides(self):
        return [s for s in self.sides if s.primary and s.primary.get("schedule") == "never"]

    def both_remote(self):
        return all(s.primary and _is_remote(s.primary) for s in self.sides)

    def outside_triple(self):
        return self.outside.events(OUTSIDE_REFUSAL_IDS, [self.outside.primary]) if self.outside.primary else []

    def outside_triple_count(self):
        return self.outside.count(OUTSIDE_REFUSAL_IDS, [self.outside.primary]) if self.outside.primary else 0

    def inside_1293_count(self):
        return self.inside.count((INSIDE_REFUSAL_ID,), self.inside.link_connectors, unattributed=True)

    def outside_address_seen_by_inside(self):
        return sorted(set(self.inside.addresses_9301()) & self.outside.identities)


# -- checks ---------------------------------------------------------------------------------------
def _check_read_errors(ctx):
    findings = []
    for side in ctx.sides:
        if side.error:
            code = side.error.get("code") or UNREACHABLE
            reason = side.error.get("reason") or "no reason given"
            what = "denied access" if code == ACCESS_DENIED else "could not be read"
            findings.append(_finding(
                code, "unknown", side.host, side.primary and side.primary.get("name"),
                f"{side.host} {what}: {reason}. The {side.role} half of link {ctx.link['id']} was not "
                "checked, so the link cannot be declared healthy.",
                {"reason": reason, "role": side.role}))
    return findings


def _check_missing_connector(ctx):
    findings = []
    for side in ctx.sides:
        peer = ctx.peer(side)
        if side.readable and not side.primary and peer.primary:
            findings.append(_finding(
                CONNECTOR_MISSING, "error", side.host, None,
                f"{side.host} has no X.400 connector to {peer.host}, but {peer.host}'s connector "
                f"{peer.primary.get('name')} names it as remote MTA: mail to {peer.host} has no route.",
                {"peer_connector": peer.primary.get("name"), "peer": peer.host}))
    return findings


def _check_never(ctx):
    findings = []
    for side in ctx.never_sides():
        peer = ctx.peer(side)
        evidence = {
            "schedule": "never",
            "events_37": side.count((NEVER_ID,), [side.primary]),
            "samples": _samples(side.events((NEVER_ID,), [side.primary])),
            "peer_refusals": peer.counts_by_id(OUTSIDE_REFUSAL_IDS, peer.link_connectors) if peer.primary else {},
        }
        findings.append(_finding(
            SCHEDULE_NEVER, "error", side.host, side.primary.get("name"),
            f"Connector {side.primary.get('name')} on {side.host} is scheduled Never: its MTA refuses "
            f"associations (event 37) and {peer.host} logs refusals (1290/289/1294). This is not the "
            "firewall-transparency fault; set the schedule to Always.",
            evidence))
    return findings


def _check_both_remote(ctx):
    if not ctx.both_remote():
        return []
    names = {s.host: s.primary.get("name") for s in ctx.sides}
    return [_finding(
        BOTH_REMOTE, "error", ctx.inside.host, ctx.inside.primary.get("name"),
        f"Both connectors of link {ctx.link['id']} ({names[ctx.inside.host]} on {ctx.inside.host}, "
        f"{names[ctx.outside.host]} on {ctx.outside.host}) are Remote initiated: neither MTA ever "
        "opens an association, so no mail flows. Schedule both Always.",
        {"connectors": names})]


def _check_not_always(ctx):
    if ctx.both_remote():
        return []
    findings = []
    for side in ctx.sides:
        schedule = (side.primary or {}).get("schedule")
        if schedule not in ("selected", "remote"):
            continue
        if schedule == "selected":
            times = side.primary.get("schedule_times")
            when = "; ".join(t["text"] for t in times[:6]) + (" ..." if len(times) > 6 else "") if times else "none set"
            text = f"is scheduled at Selected times ({when}); mail waits until the next active period"
        else:
            text = "is Remote initiated; the link depends on the peer connecting"
        findings.append(_finding(
            SCHEDULE_NOT_ALWAYS, "warning", side.host, side.primary.get("name"),
            f"Connector {side.primary.get('name')} on {side.host} {text}. KB Q196381 requires both "
            "connectors scheduled Always.",
            {"schedule": schedule, "schedule_grid": side.primary.get("schedule_grid"),
             "schedule_times": side.primary.get("schedule_times")}))
    return findings


def _check_twa(ctx):
    relied = any(_is_remote(c) for s in ctx.sides for c in s.link_connectors) or ctx.outside_triple_count() > 0
    findings = []
    for side in ctx.sides:
        for connector in side.link_connectors:
            if connector.get("two_way_alternate", True):
                continue
            severity = "error" if relied else "warning"
            why = ("the link relies on it: a remote-initiated connector, or refused associations "
                   "from the outside, leave mail to be carried back on the peer's associations"
                   if relied else "KB Q196381's precondition is two-way alternate on both connectors")
            findings.append(_finding(
                TWA_OFF, severity, side.host, connector.get("name"),
                f"Two-way alternate is off on connector {connector.get('name')} on {side.host}; {why}. "
                "Turn it on (Advanced page).",
                {"two_way_alternate": False, "relied_on": relied, "schedule": connector.get("schedule")}))
    return findings


def _check_stack(ctx):
    findings = []
    for side in ctx.sides:
        connector = side.primary
        if not connector:
            continue
        peer = ctx.peer(side)
        allowed = set(peer.identities)
        facing = ctx.facing_interface(side)
        allowed |= ctx.facing_addresses(side)
        stack = connector.get("stack_address")
        if norm(stack) in allowed:
            continue
        expected = sorted(a for a in allowed if a)
        findings.append(_finding(
            STACK_ADDRESS, "warning", side.host, connector.get("name"),
            f"Connector {connector.get('name')} on {side.host} has Stack address {stack or '(empty)'}, "
            f"which is neither the firewall interface facing {side.host} nor {peer.host} itself; "
            f"expected one of: {', '.join(expected)}.",
            {"stack_address": stack, "expected_any_of": expected, "firewall_interface": facing or None}))
    return findings


def _check_reverse(ctx):
    reverse = ctx.inside.reverse
    if not reverse:
        return []
    evidence = {"reverse_connector": reverse.get("name"), "stack_address": reverse.get("stack_address"),
                "schedule": reverse.get("schedule"), "cost": reverse.get("cost"),
                "outside_addresses": sorted(ctx.outside.identities)}
    if norm(reverse.get("stack_address")) in ctx.outside.identities:
        cost_note = "" if reverse.get("cost") == 99 else f" (its cost is {reverse.get('cost')}; the KB uses 99)"
        return [_finding(
            REVERSE_PRESENT, "info", ctx.inside.host, reverse.get("name"),
            f"Reverse connector {reverse.get('name')} on {ctx.inside.host} (Remote initiated, Stack "
            f"{reverse.get('stack_address')}) accepts {ctx.outside.host}'s real address: KB workaround 2 "
            f"is in place{cost_note}.",
            evidence)]
    return [_finding(
        REVERSE_WRONG_STACK, "warning", ctx.inside.host, reverse.get("name"),
        f"Reverse connector {reverse.get('name')} on {ctx.inside.host} has Stack address "
        f"{reverse.get('stack_address') or '(empty)'}, not {ctx.outside.host}'s address: it cannot "
        f"match {ctx.outside.host}'s associations.",
        evidence)]


def _reverse_effective(ctx):
    reverse = ctx.inside.reverse
    return bool(reverse) and norm(reverse.get("stack_address")) in ctx.outside.identities


def _kb_configuration(ctx):
    """Whether the connectors and declared facts are the KB's: Stacks at the firewall interfaces,
    a 102 relay to the inside server, transparency declared on."""
    inside_at_fw = bool(ctx.inside.primary) and norm(ctx.inside.primary.get("stack_address")) in ctx.facing_addresses(ctx.inside)
    outside_at_fw = bool(ctx.outside.primary) and norm(ctx.outside.primary.get("stack_address")) in ctx.facing_addresses(ctx.outside)
    relay = any(norm(p.get("target")) in ctx.inside.identities for p in relay_passers(ctx.firewall, ctx.servers, ctx.link))
    return {"inside_stack_is_firewall_internal": inside_at_fw, "outside_stack_is_firewall_external": outside_at_fw,
            "relay_on_102_declared": relay,
            "declared_client_transparency": bool((ctx.firewall or {}).get("client_transparency"))}


def _check_transparency(ctx):
    """XCON-TRANSPARENCY-REFUSAL; see the module docstring for the error/warning split."""
    if (not ctx.firewall or not ctx.inside.primary or not ctx.outside.primary or ctx.never_sides()
            or _is_remote(ctx.outside.primary) or ctx.both_remote() or _reverse_effective(ctx)):
        return []
    config = _kb_configuration(ctx)
    if not config["inside_stack_is_firewall_internal"]:
        return []
    triple = ctx.outside_triple_count()
    queue = ctx.outside.queue(ctx.outside.primary)
    inside_1293 = ctx.inside_1293_count()
    seen = ctx.outside_address_seen_by_inside()
    evidence = {
        "outside_events": ctx.outside.counts_by_id(OUTSIDE_REFUSAL_IDS, [ctx.outside.primary]),
        "outside_samples": _samples(ctx.outside_triple()),
        "outside_queue": queue,
        "inside_events": {str(INSIDE_REFUSAL_ID): inside_1293,
                          str(NO_MATCH_ID): ctx.inside.count((NO_MATCH_ID,), ctx.inside.link_connectors, unattributed=True)},
        "inside_samples": _samples(ctx.inside.events((INSIDE_REFUSAL_ID, NO_MATCH_ID), ctx.inside.link_connectors, unattributed=True)),
        "addresses_9301": ctx.inside.addresses_9301(),
        "outside_server_address": ctx.outside.server.get("address"),
        "inside_stack_address": ctx.inside.primary.get("stack_address"),
        "outside_stack_address": ctx.outside.primary.get("stack_address"),
        "firewall": ctx.firewall.get("name"),
        "configuration": config,
    }
    evidence["addresses_9301_decoded"] = ctx.inside.decoded_9301(ctx.outside.identities)
    inside_refuses = inside_1293 > 0 or bool(seen)
    if ctx.inside.evidence is not None and ctx.outside.evidence is not None:
        if inside_refuses and (triple > 0 or queue > 0):
            evidence["basis"] = "observed"
            evidence["confirmed_by_9301"] = bool(seen)
            evidence["basis_detail"] = _observed_basis(ctx, triple, queue, inside_1293, seen)
            decoded = ", ".join(f"{d['hex']} = {d['address']}" if d.get("hex") else d["address"]
                                for d in evidence["addresses_9301_decoded"] if d["outside_server"])
            others = ", ".join(d["address"] for d in evidence["addresses_9301_decoded"])
            if seen:
                no_9301 = f"event 9301 with {ctx.outside.host}'s own address {decoded}"
            elif others:
                no_9301 = f"event 9301 only with other addresses ({others})"
            else:
                no_9301 = ("no event 9301 (not needed: since Exchange 5.5 SP2 the MTA logs it only after a failed "
                           "reverse lookup, and some builds never do)")
            return [_finding(
                TRANSPARENCY_REFUSAL, "error", ctx.outside.host, ctx.outside.primary.get("name"),
                f"{ctx.inside.host} refuses every association that {ctx.outside.host} opens "
                f"({triple} refusal events on {ctx.outside.host}, {inside_1293} event 1293 and "
                f"{no_9301} on {ctx.inside.host}; {queue} messages "
                f"queued on {ctx.outside.host}). Firewall {ctx.firewall.get('name')} passes "
                f"{ctx.outside.host}'s real address (client-side transparency) while connector "
                f"{ctx.inside.primary.get('name')} expects the firewall's internal address "
                f"{ctx.inside.primary.get('stack_address')} (KB Q196381). Mail from "
                f"{ctx.outside.host} arrives only when {ctx.inside.host} connects.",
                evidence)]
        return []
    if triple > 0 and ctx.outside.evidence is not None:
        evidence["basis"] = "outside-evidence-only"
    elif config["outside_stack_is_firewall_external"] and config["relay_on_102_declared"] and config["declared_client_transparency"]:
        evidence["basis"] = "configuration"
    else:
        return []
    return [_finding(
        TRANSPARENCY_REFUSAL, "warning", ctx.outside.host, ctx.outside.primary.get("name"),
        f"Link {ctx.link['id']} is set up as in KB Q196381 (connectors pointed at firewall "
        f"{ctx.firewall.get('name')}'s interfaces) and the fault is expected "
        f"({evidence['basis']}), but the MTA evidence needed to confirm it is missing.",
        evidence)]


def _observed_basis(ctx, triple, queue, inside_1293, seen):
    """The facts the KB fault was named from, in words (finding evidence ``basis_detail``)."""
    parts = []
    if triple:
        parts.append(f"{triple} events 1290/289/1294 on {ctx.outside.host} for connector "
                     f"{ctx.outside.primary.get('name')}")
    if queue:
        parts.append(f"{queue} messages queued on {ctx.outside.host}")
    if inside_1293:
        parts.append(f"{inside_1293} events 1293 on {ctx.inside.host}")
    parts.append(f"connector {ctx.inside.primary.get('name')} on {ctx.inside.host} points at firewall "
                 f"{ctx.firewall.get('name')}'s internal address {ctx.inside.primary.get('stack_address')}")
    if seen:
        parts.append(f"event 9301 on {ctx.inside.host} names {ctx.outside.host}'s own address ({', '.join(seen)})")
    elif ctx.inside.addresses_9301():
        parts.append(f"event 9301 on {ctx.inside.host} names only other addresses "
                     f"({', '.join(ctx.inside.addresses_9301())}); the fault is named without it")
    else:
        mta = (ctx.inside.evidence or {}).get("mta") or {}
        build = f" (MTA build {mta['build']})" if mta.get("build") else ""
        parts.append(f"no event 9301 on {ctx.inside.host}{build}: not required, since Exchange 5.5 SP2 the "
                     "MTA logs it only after a failed reverse lookup (KB Q189345) and builds 2354-2620 never "
                     "log it (KB Q234962)")
    return "; ".join(parts) + "."


def _check_facts(ctx):
    """XCON-FIREWALL-FACTS-CONTRADICTED: declared firewall facts against the MTA evidence."""
    if not ctx.firewall or ctx.inside.evidence is None:
        return []
    name = ctx.firewall.get("name")
    declared = bool(ctx.firewall.get("client_transparency"))
    seen_outside = ctx.outside_address_seen_by_inside()
    seen_internal = sorted(a for a in ctx.facing_addresses(ctx.inside) if a in ctx.inside.addresses_9301())
    internal = ", ".join(seen_internal)
    findings = []

    def add(message, **evidence):
        evidence.update(firewall=name, addresses_9301=ctx.inside.addresses_9301())
        findings.append(_finding(FACTS_CONTRADICTED, "warning", name, None, message, evidence))

    if not declared and seen_outside:
        add(f"Firewall {name} is declared with client-side transparency off, but {ctx.inside.host} "
            f"logged event 9301 with {ctx.outside.host}'s own address {', '.join(seen_outside)}: the "
            "source address is not rewritten. Correct the inventory (the diagnosis follows the evidence).",
            declared_client_transparency=False, observed="original source address")
    elif (not declared and ctx.inside.primary and ctx.outside.primary and not ctx.never_sides()
          and norm(ctx.inside.primary.get("stack_address")) in ctx.facing_addresses(ctx.inside)
          and ctx.inside_1293_count() > 0 and ctx.outside_triple_count() > 0):
        # no 9301 to show the address (5.5 SP2 and later log it only after a failed reverse lookup):
        # a rewritten source would match the Stack, so the refusals say it is not rewritten
        add(f"Firewall {name} is declared with client-side transparency off, but {ctx.inside.host} refuses "
            f"{ctx.outside.host}'s associations (1293 on {ctx.inside.host}, 1290/289/1294 on {ctx.outside.host}) "
            f"although connector {ctx.inside.primary.get('name')} expects the firewall's internal address "
            f"{ctx.inside.primary.get('stack_address')}: a rewritten source address would match it, so it is not "
            "rewritten. Correct the inventory (the diagnosis follows the evidence).",
            declared_client_transparency=False, observed="refusals of the rewritten address's Stack",
            basis="1293 and 1290/289/1294 without a 9301")
    if declared and seen_internal:
        add(f"Firewall {name} is declared with client-side transparency on, but {ctx.inside.host} "
            f"logged event 9301 with the firewall's internal address {internal}: the source address "
            "is rewritten. Correct the inventory.",
            declared_client_transparency=True, observed="gateway address")
    outside_at_fw = ctx.outside.primary and norm(ctx.outside.primary.get("stack_address")) in ctx.facing_addresses(ctx.outside)
    arrived = ctx.inside_1293_count() > 0 or bool(seen_outside)
    relay = any(norm(p.get("target")) in ctx.inside.identities for p in relay_passers(ctx.firewall, ctx.servers, ctx.link))
    if outside_at_fw and arrived and not relay:
        add(f"No service passer on TCP 102 to {ctx.inside.host} is declared on firewall {name}, but "
            f"{ctx.outside.host}'s associations addressed to the firewall reach {ctx.inside.host} "
            "(events 1293/9301): a relay exists. Correct the inventory.",
            declared_passers=(ctx.firewall.get("passers") or []), observed="associations relayed")
    return findings


def _check_queues(ctx):
    threshold = int(ctx.options["queue_threshold"])
    findings = []
    for side in ctx.sides:
        for connector in side.link_connectors:
            queue = side.queue(connector)
            if queue <= threshold:
                continue
            backlog = side.events((BACKLOG_ID,), [connector])
            findings.append(_finding(
                QUEUE_BACKLOG, "warning", side.host, connector.get("name"),
                f"{queue} messages are queued on {side.host} for connector {connector.get('name')} "
                f"(threshold {threshold}).",
                {"queue_length": queue, "threshold": threshold, "events_659": len(backlog),
                 "samples": _samples(backlog), "work_queue": (side.evidence or {}).get("work_queue")}))
    return findings


def _check_unexplained(ctx, findings):
    explaining = {TRANSPARENCY_REFUSAL, SCHEDULE_NEVER, BOTH_REMOTE, CONNECTOR_MISSING}
    if any(f["code"] in explaining for f in findings) or not ctx.outside.primary:
        return []
    triple = ctx.outside_triple_count()
    if not triple:
        return []
    hint = (f" Reverse connector {ctx.inside.reverse.get('name')} is in place: if it was created "
            f"recently, check that {ctx.inside.host}'s MTA was restarted since." if _reverse_effective(ctx) else "")
    return [_finding(
        REFUSALS_UNEXPLAINED, "warning", ctx.outside.host, ctx.outside.primary.get("name"),
        f"{ctx.outside.host} logs {triple} refused or failed associations (1290/289/1294) for connector "
        f"{ctx.outside.primary.get('name')}, but {ctx.inside.host} shows no refusal that explains them "
        f"(check the MTA service, the network path and the Stack addresses).{hint}",
        {"outside_events": ctx.outside.counts_by_id(OUTSIDE_REFUSAL_IDS, [ctx.outside.primary]),
         "samples": _samples(ctx.outside_triple()),
         "inside_service": (ctx.inside.evidence or {}).get("service")})]


CHECKS = (_check_read_errors, _check_missing_connector, _check_never, _check_both_remote, _check_not_always,
          _check_transparency, _check_twa, _check_stack, _check_reverse, _check_facts, _check_queues)


def link_status(findings):
    """error > unknown > warning > ok (info never lowers the status)."""
    severities = {f["severity"] for f in findings}
    for status in ("error", "unknown", "warning"):
        if status in severities:
            return status
    return "ok"


def _sort_key(finding):
    return (SEVERITIES.index(finding["severity"]), norm(finding["host"]), finding["code"], norm(finding["connector"]))


def diagnose_link(link, servers, firewall, options=None):
    """A copy of `link` with ``findings``, ``status``, ``recommended_workaround`` and ``reason``."""
    link = copy.deepcopy(link)
    ctx = LinkContext(link, servers, firewall, options)
    findings = []
    for check in CHECKS:
        findings.extend(check(ctx))
    findings.extend(_check_unexplained(ctx, findings))
    link["findings"] = sorted(findings, key=_sort_key)
    link["status"] = link_status(findings)
    link["recommended_workaround"], link["reason"] = select_workaround(link, "auto", servers, firewall, options)
    return link


def diagnose(servers, firewalls, options=None):
    """discover_links + diagnose_link for every link."""
    by_name = {norm(f.get("name")): f for f in firewalls or []}
    return [diagnose_link(link, servers, by_name.get(norm(link["firewall"])), options)
            for link in discover_links(servers, firewalls)]


# -- workaround policy ----------------------------------------------------------------------------
def finding_codes(link):
    return {f["code"]: f for f in link.get("findings") or []}


def _partly_in_place(workaround, link, servers, firewall):
    """Whether `workaround` was started on this link (an explicit re-run then completes it)."""
    if workaround == "reverse_connector":
        return bool(link["inside"].get("reverse_connector"))
    if workaround == "firewall_tunnel" and firewall:
        inside, outside = link["inside"]["host"], link["outside"]["host"]
        if has_routed_path(firewall, inside, outside):
            return True
        for role, peer in (("inside", outside), ("outside", inside)):
            side = Side(link, role, servers)
            if side.primary and norm(side.primary.get("stack_address")) in identities(servers.get(peer), peer):
                return bool(relay_passers(firewall, servers, link))
    return False


def select_workaround(link, requested, servers, firewall, options=None):
    """(workaround, reason) for a diagnosed link; `requested` is xcon_workaround."""
    options = merged_options(options)
    if requested not in REQUESTABLE:
        raise ValueError(f"unknown workaround {requested!r}; expected one of {', '.join(REQUESTABLE)}")
    codes = finding_codes(link)
    kb = codes.get(TRANSPARENCY_REFUSAL)
    preconditions = [c for c in (SCHEDULE_NEVER, BOTH_REMOTE, TWA_OFF, SCHEDULE_NOT_ALWAYS, CONNECTOR_MISSING) if c in codes]
    if requested == "none":
        return "none", "Audit only (workaround none): nothing is planned."
    if link.get("status") == "unknown" and not kb:
        return "none", "The link could not be read completely; nothing is planned until both servers can be read."
    if requested != "auto":
        if requested != "reverse_connector" and not firewall:
            return "none", f"Requested {requested}, but link {link['id']} has no firewall between its servers."
        if kb or _partly_in_place(requested, link, servers, firewall):
            return requested, f"Requested by the operator (workaround {requested})."
        return "none", f"Requested {requested}, but link {link['id']} does not show the KB Q196381 fault; no workaround is planned."
    if not kb:
        if link.get("status") == "ok":
            return "none", "The link is healthy; no workaround is needed."
        if preconditions:
            return "none", ("The cause is not the firewall-transparency fault but " + ", ".join(preconditions)
                            + "; the preconditions (schedule Always, two-way alternate on) fix it, not a workaround.")
        return "none", "The findings are not the KB Q196381 fault; see them for what to do. No workaround applies."
    if link["inside"].get("reverse_connector"):
        return "reverse_connector", "A reverse connector already exists on the inside server; repairing it is the smallest change."
    if not firewall or firewall.get("driver") not in TUNNEL_DRIVERS:
        return "reverse_connector", "The firewall cannot be changed by a known driver; the reverse connector needs no firewall change."
    if not options["firewall_changes_possible"]:
        return "reverse_connector", "Firewall changes are not possible (firewall_changes_possible false); the reverse connector needs none."
    dependents = firewall_dependents(link, servers, firewall)
    if dependents:
        names = ", ".join(f"{d['connector']} on {d['host']}" for d in dependents)
        return "reverse_connector", (f"A firewall tunnel would remove the TCP 102 relay that other connectors still use ({names}); "
                                     "the reverse connector leaves them untouched.")
    return "firewall_tunnel", ("KB Q196381's preferred workaround: route TCP 102 between the two servers and point both "
                               f"connectors at each other; firewall {firewall.get('name')} ({firewall.get('driver')} driver) can be changed.")
