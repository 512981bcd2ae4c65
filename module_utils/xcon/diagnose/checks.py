"""The configuration checks of one link: read and write access, missing connectors, schedules,
two-way alternate, Stack addresses and the reverse connector (findings table: the package docstring)."""

from __future__ import annotations

from xcon.diagnose.codes import (ACCESS_DENIED, BOTH_REMOTE, CONNECTOR_MISSING, FIREWALL_UNKNOWN, MTA_PORT_MISMATCH, MTA_PORT_UNKNOWN,
                                 NEVER_ID, OUTSIDE_REFUSAL_IDS, REVERSE_PRESENT, REVERSE_WRONG_STACK, SCHEDULE_NEVER, SCHEDULE_NOT_ALWAYS,
                                 STACK_ADDRESS, TWA_OFF, UNREACHABLE, event_samples, make_finding, norm)
from xcon.diagnose.links import is_remote, stack_in


def check_read_errors(ctx):
    findings = []
    for side in ctx.sides:
        if side.error:
            code = side.error.get("code") or UNREACHABLE
            reason = side.error.get("reason") or "no reason given"
            what = "denied access" if code == ACCESS_DENIED else "could not be read"
            findings.append(make_finding(
                code, "unknown", side.host, side.primary and side.primary.get("name"),
                f"{side.host} {what}: {reason}. The {side.role} half of link {ctx.link['id']} was not "
                "checked, so the link cannot be declared healthy.",
                {"reason": reason, "role": side.role}))
    return findings


def check_firewall_unknown(ctx):
    """XCON-FIREWALL-UNKNOWN for each firewall the link may cross whose facts are unknown
    (xcon.diagnose.diagnose puts them on the link)."""
    return [make_finding(
        FIREWALL_UNKNOWN, "unknown", f["name"], None,
        f"Firewall {f['name']} may sit on link {ctx.link['id']}, but {f['reason']}. Which relays, routed paths and "
        "transparency it has decides whether the KB fault is there and what may be changed: the link is not diagnosed "
        "as healthy and nothing is planned for it. Document the firewall in the inventory (xcon_firewall_inside, "
        "xcon_firewall_outside, xcon_firewall_interfaces, ...) or fix its driver, and run again.",
        {"firewall": f["name"], "reason": f["reason"]}) for f in ctx.link.get("unknown_firewalls") or []]


def check_write_access(ctx):
    """XCON-ACCESS-DENIED for a server read with an account that may not modify connectors: the
    audit is complete, but the link cannot be fixed with this account, so it is ``unknown``, never
    ``ok``."""
    findings = []
    for side in ctx.sides:
        if side.readable and side.server.get("write_access") is False:
            findings.append(make_finding(
                ACCESS_DENIED, "unknown", side.host, ctx.link[side.role].get("connector"),
                f"{side.host}: the account may read but not modify the X.400 connectors, so no change can be made on "
                "this server with it. Use an account with 'Modify Admin Attributes' on the Connections container.",
                {"write_access": False, "role": side.role}))
    return findings


def check_missing_connector(ctx):
    findings = []
    for side in ctx.sides:
        peer = ctx.peer(side)
        if side.readable and not side.primary and peer.primary:
            findings.append(make_finding(
                CONNECTOR_MISSING, "error", side.host, None,
                f"{side.host} has no X.400 connector to {peer.host}, but {peer.host}'s connector "
                f"{peer.primary.get('name')} names it as remote MTA: mail to {peer.host} has no route.",
                {"peer_connector": peer.primary.get("name"), "peer": peer.host}))
    return findings


def check_never(ctx):
    findings = []
    for side in ctx.never_sides():
        peer = ctx.peer(side)
        evidence = {
            "schedule": "never",
            "events_37": side.count((NEVER_ID,), [side.primary]),
            "samples": event_samples(side.events((NEVER_ID,), [side.primary])),
            "peer_refusals": peer.counts_by_id(OUTSIDE_REFUSAL_IDS, peer.link_connectors) if peer.primary else {},
        }
        findings.append(make_finding(
            SCHEDULE_NEVER, "error", side.host, side.primary.get("name"),
            f"Connector {side.primary.get('name')} on {side.host} is scheduled Never: its MTA refuses "
            f"associations (event 37) and {peer.host} logs refusals (1290/289/1294). This is not the "
            "firewall-transparency fault; set the schedule to Always.",
            evidence))
    return findings


def check_both_remote(ctx):
    if not ctx.both_remote():
        return []
    names = {s.host: s.primary.get("name") for s in ctx.sides}
    return [make_finding(
        BOTH_REMOTE, "error", ctx.inside.host, ctx.inside.primary.get("name"),
        f"Both connectors of link {ctx.link['id']} ({names[ctx.inside.host]} on {ctx.inside.host}, "
        f"{names[ctx.outside.host]} on {ctx.outside.host}) are Remote initiated: neither MTA ever "
        "opens an association, so no mail flows. Schedule both Always.",
        {"connectors": names})]


def check_not_always(ctx):
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
        findings.append(make_finding(
            SCHEDULE_NOT_ALWAYS, "warning", side.host, side.primary.get("name"),
            f"Connector {side.primary.get('name')} on {side.host} {text}. KB Q196381 requires both "
            "connectors scheduled Always.",
            {"schedule": schedule, "schedule_grid": side.primary.get("schedule_grid"),
             "schedule_times": side.primary.get("schedule_times")}))
    return findings


def check_twa(ctx):
    relied = any(is_remote(c) for s in ctx.sides for c in s.link_connectors) or ctx.outside_triple_count() > 0
    findings = []
    for side in ctx.sides:
        for connector in side.link_connectors:
            if connector.get("two_way_alternate", True):
                continue
            severity = "error" if relied else "warning"
            why = ("the link relies on it: a remote-initiated connector, or refused associations "
                   "from the outside, leave mail to be carried back on the peer's associations"
                   if relied else "KB Q196381's precondition is two-way alternate on both connectors")
            findings.append(make_finding(
                TWA_OFF, severity, side.host, connector.get("name"),
                f"Two-way alternate is off on connector {connector.get('name')} on {side.host}; {why}. "
                "Turn it on (Advanced page).",
                {"two_way_alternate": False, "relied_on": relied, "schedule": connector.get("schedule")}))
    return findings


def check_stack(ctx):
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
        if stack_in(connector, allowed):
            continue
        expected = sorted(a for a in allowed if a)
        resolved = connector.get("stack_resolved") or []
        how = ""
        if connector.get("stack_resolve_error"):
            how = f" (the host name does not resolve on {side.host}'s WinRM host: {connector['stack_resolve_error']})"
        elif resolved:
            how = f" (resolved on {side.host}'s WinRM host to {', '.join(resolved)})"
        findings.append(make_finding(
            STACK_ADDRESS, "warning", side.host, connector.get("name"),
            f"Connector {connector.get('name')} on {side.host} has Stack address {stack or '(empty)'}{how}, "
            f"which is neither the firewall interface facing {side.host} nor {peer.host} itself; "
            f"expected one of: {', '.join(expected)}.",
            {"stack_address": stack, "stack_resolved": resolved, "resolve_error": connector.get("stack_resolve_error"),
             "expected_any_of": expected, "firewall_interface": facing or None}))
    return findings


def check_mta_port(ctx):
    """Q176466: when one MTA's RFC1006 port changes, every MTA it talks to must use the same port.
    A port that could not be read is said so (never taken silently as 102)."""
    ports = {side.host: (side.server or {}).get("mta_port") for side in ctx.sides if side.readable}
    known = {h: int(p) for h, p in ports.items() if p}
    findings = []
    for side in ctx.sides:
        error = (side.server or {}).get("mta_port_error")
        if not side.readable or ports.get(side.host) or not error:
            continue
        basis = "the other server's port" if known else "the default, assumed"
        findings.append(make_finding(
            MTA_PORT_UNKNOWN, "warning", side.host, side.primary and side.primary.get("name"),
            f"The MTA's TCP port on {side.host} could not be read (registry value \"RFC1006 Port Number\": {error}). "
            f"The diagnosis and any firewall change record use TCP {ctx.port} ({basis}), which is wrong if "
            f"{side.host}'s MTA listens on another port (Q161931). Through a management host, give the target's "
            "credentials (xcon_target_user) or use CredSSP or delegated Kerberos.",
            {"mta_port_used": ctx.port, "read_error": error}))
    if len(known) < 2 or len(set(known.values())) < 2:
        return findings
    listed = ", ".join(f"{h} {p}" for h, p in sorted(known.items()))
    return [make_finding(
        MTA_PORT_MISMATCH, "error", ctx.inside.host, ctx.inside.primary and ctx.inside.primary.get("name"),
        f"The MTAs of link {ctx.link['id']} listen on different TCP ports ({listed}; registry value \"RFC1006 "
        "Port Number\", 102 when absent): an association from one never reaches the other. All MTAs that "
        "talk over X.400 must use the same port (Q176466, Q161931).",
        {"mta_ports": known})] + findings


def check_reverse(ctx):
    reverse = ctx.inside.reverse
    if not reverse:
        return []
    evidence = {"reverse_connector": reverse.get("name"), "stack_address": reverse.get("stack_address"),
                "schedule": reverse.get("schedule"), "cost": reverse.get("cost"),
                "outside_addresses": sorted(ctx.outside.identities)}
    if stack_in(reverse, ctx.outside.identities):
        cost_note = "" if reverse.get("cost") == 99 else f" (its cost is {reverse.get('cost')}; the KB uses 99)"
        return [make_finding(
            REVERSE_PRESENT, "info", ctx.inside.host, reverse.get("name"),
            f"Reverse connector {reverse.get('name')} on {ctx.inside.host} (Remote initiated, Stack "
            f"{reverse.get('stack_address')}) accepts {ctx.outside.host}'s real address: KB workaround 2 "
            f"is in place{cost_note}.",
            evidence)]
    return [make_finding(
        REVERSE_WRONG_STACK, "warning", ctx.inside.host, reverse.get("name"),
        f"Reverse connector {reverse.get('name')} on {ctx.inside.host} has Stack address "
        f"{reverse.get('stack_address') or '(empty)'}, not {ctx.outside.host}'s address: it cannot "
        f"match {ctx.outside.host}'s associations.",
        evidence)]
