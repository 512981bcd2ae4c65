"""Turn a diagnosed link and a workaround into the exact list of changes (pure Python).

Change shape (report.md's, extended compatibly)::

    {"link": "EXIN<->EXOUT", "step": 1, "target": "EXIN" | firewall name, "kind": "connector" | "firewall",
     "object": connector name | firewall object, "action": "create" | "modify" | "delete" | "operator",
     "before": {...}, "after": {...}, "applied": False, "restart_required": bool, "description": "...",
     # connectors: "connector", "dn"; firewall: "firewall_steps" (design.md change-record steps),
     # optional "warning" and "affected_connectors"}

Order
-----
1. Preconditions (KB Q196381): both primary connectors scheduled Always with two-way alternate on.
2. The workaround:

   * ``reverse_connector``: create (or repair) on the inside server a clone of the inside primary
     with four differing properties: name/display name, schedule Remote initiated, Stack = the
     outside server (IP, or FQDN with ``address_type: hostname``), cost 99.
   * ``firewall_tunnel``, shortest-outage order: (a) operator: add the routed path for TCP 102
     between the two servers - harmless while the relays still carry the traffic; (b) repoint both
     primaries' Stack at the peer server; (c) operator: remove the TCP 102 relays (GSPs) to the two
     servers - with a warning listing every other connector on either server whose Stack is still
     a firewall address, because the removal cuts them off.
   * ``transparency_off``: operator: turn client-side transparency off; needs the option
     ``transparency_off_acknowledged`` (every server behind the firewall then loses the real
     client address), else :class:`PlanError`.
   * ``none``: nothing.

``workaround`` is what the operator requested; the link carries the policy's answer to it
(``workaround_chosen``, set once by xcon.diagnose.diagnose_link); ``none`` plans nothing at all
(audit only), whereas a link whose recommendation is ``none`` still gets its preconditions planned.  Nothing is planned for a
link that could not be read completely, nor for what is already right: planning the fixed state
yields ``[]``.  Whether a connector change needs the MTA restarted (``restart_required``, once, at
the end) is the Exchange profile's answer (xcon.profile.restart_required).

Options: ``reverse_connector_name``, ``address_type`` ("ip" | "hostname"),
``transparency_off_acknowledged``, ``exchange_version`` (the profile of a server whose own
``exchange_version`` is not given, "5.5"), plus those of xcon.diagnose.select_workaround.
"""

from __future__ import annotations

from xcon import diagnose as dx
from xcon import firewall as fw
from xcon import inputs
from xcon import profile as xprofile
from xcon.mask import mask

REVERSE_COST = 99


class PlanError(ValueError):
    """A change cannot be planned as asked (missing acknowledgement, no firewall, ...)."""


def _connector_change(link, side, connector, action, before, after, description, profile):
    changed = [action] if action in ("create", "delete") else list(after)
    return {
        "link": link["id"], "target": side.host, "kind": "connector", "object": connector.get("name") if connector else after.get("name"),
        "connector": (connector or after).get("name"), "dn": (connector or {}).get("dn"),
        "action": action, "before": before, "after": after, "applied": False,
        "restart_required": any(xprofile.restart_required(profile, name) for name in changed), "description": description,
    }


def _firewall_change(link, firewall, obj, steps, before, after, description, **extra):
    change = {
        "link": link["id"], "target": firewall.get("name"), "kind": "firewall", "object": obj,
        "action": "operator", "before": before, "after": after, "applied": False,
        "restart_required": False, "description": description, "firewall_steps": steps,
    }
    change.update(extra)
    return change


def _modify(link, side, connector, wanted, why, profile):
    """A modify change for the properties of `connector` that differ from `wanted`, or None."""
    before = {k: connector.get(k) for k, v in wanted.items() if connector.get(k) != v}
    if not before:
        return None
    after = {k: wanted[k] for k in before}
    what = ", ".join(f"{k} {before[k]!r} -> {after[k]!r}" for k in sorted(before))
    return _connector_change(link, side, connector, "modify", before, after,
                             f"{side.host}: connector {connector.get('name')}: {what} ({why}).", profile)


def _preconditions(link, ctx):
    changes = []
    for side in ctx.sides:
        if side.primary:
            change = _modify(link, side, side.primary, {"schedule": "always", "two_way_alternate": True},
                             "KB Q196381 precondition: schedule Always, two-way alternate on", ctx.profiles[side.host])
            if change:
                changes.append(change)
    return changes


def _check_reverse_name(link, inside, name, given):
    """Refuse, before any write, a reverse connector name the directory would refuse or that is
    already another connector's: directory names are case-insensitive, and a name equal to the
    primary's (any case) would turn the repair of the reverse connector into a rewrite of the
    primary connector.  The link's own reverse connector (a re-run) is the one allowed match."""
    what = "xcon_reverse_connector_name" if given else f"the default reverse connector name (<{inside.primary.get('name')}>-REVERSE)"
    problem = inputs.name_problem(name, "name")
    if problem:
        raise PlanError(f"link {link['id']}: {what} {name!r}: {problem}. Nothing was changed; "
                        f"give another name with -e xcon_reverse_connector_name=NAME (at most {inputs.NAME_MAX} characters).")
    taken = inside.connector(name)
    if taken is not None and taken is not inside.reverse:
        raise PlanError(f"link {link['id']}: {what} {name!r} is already the name of connector {taken.get('name')!r} on "
                        f"{inside.host} (directory names ignore case), so creating the reverse connector would change "
                        "that connector instead. Nothing was changed; choose a name no connector has, "
                        "with -e xcon_reverse_connector_name=NAME.")


def _stack_address(link, side, address_type):
    """The Stack address to point at `side`'s server, refused when the directory cannot store it."""
    stack = dx.address_for(side.server, side.host, address_type)
    if len(str(stack).encode("utf-8")) > inputs.STACK_ADDRESS_MAX:
        other = "ip" if address_type == "hostname" else "hostname"
        raise PlanError(f"link {link['id']}: the Stack address for {side.host}, {stack!r}, has {len(str(stack).encode('utf-8'))} "
                        f"bytes; the directory stores at most {inputs.STACK_ADDRESS_MAX} (N-Address). Nothing was changed; "
                        f"use -e xcon_stack_address_type={other}, or give the server a shorter name.")
    return stack


def _reverse_connector(link, ctx):
    inside, outside = ctx.inside, ctx.outside
    if not inside.primary:
        raise PlanError(f"link {link['id']}: {inside.host} has no connector to clone for the reverse connector")
    given = ctx.options["reverse_connector_name"]
    name = given or f"{inside.primary.get('name')}-REVERSE"
    _check_reverse_name(link, inside, name, given)
    existing = inside.connector(name) or inside.reverse
    address_type = ctx.options["address_type"]
    stack = _stack_address(link, outside, address_type)
    if existing:
        wanted = {"schedule": "remote", "cost": REVERSE_COST, "two_way_alternate": True}
        if not dx.stack_in(existing, outside.identities):
            wanted.update(stack_address=stack, address_type=address_type)
        change = _modify(link, inside, existing, wanted, f"reverse connector for {outside.host}'s real address", ctx.profiles[inside.host])
        return [change] if change else []
    suffix = " (reverse, remote initiated)"
    display = str(inside.primary.get("display_name") or inside.primary.get("name"))[:inputs.DISPLAY_NAME_MAX - len(suffix)] + suffix
    after = {"name": name, "display_name": display, "schedule": "remote", "stack_address": stack,
             "address_type": address_type, "cost": REVERSE_COST, "clone_of": inside.primary.get("name")}
    return [_connector_change(
        link, inside, None, "create", {}, after,
        f"{inside.host}: create connector {name}, a copy of {inside.primary.get('name')} on every property page "
        f"except: Remote initiated, Stack address {stack} ({outside.host}), cost {REVERSE_COST} (KB Q196381 "
        f"workaround 2). {inside.host}'s MTA then accepts {outside.host}'s associations from its real address.",
        ctx.profiles[inside.host])]


def _firewall_tunnel(link, ctx):
    firewall = ctx.firewall
    inside, outside = ctx.inside, ctx.outside
    hosts = [inside.host, outside.host]
    changes = []
    port = link.get("mta_port") or dx.X400_PORT
    if not dx.has_routed_path(firewall, *hosts, port):
        step = {"action": "add_routed_path", "hosts": hosts, "port": port}
        # before/after show this link's part of the firewall only: a fleet's plan and report grow
        # with the number of links, not with its square.
        changes.append(_firewall_change(
            link, firewall, f"routed path {inside.host}<->{outside.host} tcp/{port}", [step],
            {"routed_paths": []}, {"routed_paths": [{"hosts": list(hosts), "port": port}]},
            f"Operator, firewall {firewall.get('name')}: add a routed (not proxied) path for TCP {port} between "
            f"{inside.host} and {outside.host}. Harmless while the relays still carry the traffic."))
    for side in ctx.sides:
        peer = ctx.peer(side)
        if side.primary and not dx.stack_in(side.primary, peer.identities):
            address_type = ctx.options["address_type"]
            wanted = {"stack_address": _stack_address(link, peer, address_type), "address_type": address_type}
            change = _modify(link, side, side.primary, wanted, f"point straight at {peer.host} through the routed path", ctx.profiles[side.host])
            if change:
                changes.append(change)
    passers = dx.relay_passers(firewall, ctx.servers, link)
    if passers:
        # The alias address goes into the step, so that its inverse (rollback) listens there again.
        steps = [dict({"action": "remove_passer", "port": int(p.get("port", dx.X400_PORT)), "interface": p.get("interface"),
                       "target": p.get("target")}, **({"address": p["address"]} if p.get("address") else {}))
                 for p in passers]
        dependents = dx.firewall_dependents(link, ctx.servers, firewall)
        extra = {}
        if dependents:
            names = ", ".join(f"{d['connector']} on {d['host']} (Stack {d['stack_address']})" for d in dependents)
            extra = {"warning": f"Removing the TCP {port} relay cuts off these connectors, which still point at the firewall: {names}. "
                                "Repoint them first or keep the relay.",
                     "affected_connectors": dependents}
        changes.append(_firewall_change(
            link, firewall, f"service passers on tcp/{port}", steps,
            {"passers": [dict(p) for p in passers]}, {"passers": []},
            f"Operator, firewall {firewall.get('name')}: remove the Generic Service Passer(s) on TCP {port} relaying to "
            f"{' and '.join(sorted({p.get('target') for p in passers}))}, once both connectors point at each other.",
            **extra))
    return changes


def _transparency_off(link, ctx):
    firewall = ctx.firewall
    observed = dx.TRANSPARENCY_REFUSAL in dx.finding_codes(link)
    if not firewall.get("client_transparency") and not observed:
        return []
    if not ctx.options["transparency_off_acknowledged"]:
        raise PlanError(f"link {link['id']}: turning client-side transparency off on firewall {firewall.get('name')} "
                        "needs xcon_transparency_off_acknowledged=true. " + fw.TRANSPARENCY_SIDE_EFFECT)
    return [_firewall_change(
        link, firewall, f"client-side transparency (TCP {link.get('mta_port') or dx.X400_PORT} rule)",
        [{"action": "set_transparency", "value": False, "port": link.get("mta_port") or dx.X400_PORT}],
        {"client_transparency": bool(firewall.get("client_transparency"))}, {"client_transparency": False},
        f"Operator, firewall {firewall.get('name')}: turn client-side transparency off for the TCP {link.get('mta_port') or dx.X400_PORT} relay to "
        f"{ctx.inside.host}, so {ctx.inside.host} sees the firewall's internal address it expects (KB workaround 3). "
        + fw.TRANSPARENCY_SIDE_EFFECT,
        side_effect=fw.TRANSPARENCY_SIDE_EFFECT, acknowledged=True)]


WORKAROUND_PLANNERS = {
    "reverse_connector": _reverse_connector,
    "firewall_tunnel": _firewall_tunnel,
    "transparency_off": _transparency_off,
    "none": lambda link, ctx: [],
}


def plan_changes(link, servers, firewall, workaround, options=None):
    """The ordered changes for a `link` diagnosed with ``requested=workaround`` (its
    ``workaround_chosen`` is planned; `workaround` ``none`` plans nothing, not even preconditions)."""
    if workaround == "none":
        return []
    ctx = dx.LinkContext(link, servers, firewall, options)
    if not ctx.fully_read:
        return []
    # Each server's Exchange profile says which of its changes need an MTA restart.
    ctx.profiles = {side.host: xprofile.shared_profile(side.server.get("exchange_version") or ctx.options["exchange_version"])
                    for side in ctx.sides}
    chosen = link["workaround_chosen"]
    if chosen in ("firewall_tunnel", "transparency_off") and not firewall:
        raise PlanError(f"link {link['id']}: {chosen} needs a firewall between the two servers")
    changes = _preconditions(link, ctx) + WORKAROUND_PLANNERS[chosen](link, ctx)
    for number, change in enumerate(changes, start=1):
        change["step"] = number
    return changes


def plan_diff(entry):
    """An Ansible diff (shown by --diff) for one plan entry: its before and after, secrets masked; a
    change made in the Exchange Administrator program shows its record."""
    what = f"{entry['id']} {entry['target']}: {entry.get('action')} {entry.get('object')}"
    record = entry.get("administrator_record")
    after = (record["instructions"] + "\n") if record else (entry.get("after") or {})
    return mask({"before_header": f"{what} (now)", "after_header": f"{what} (planned" + (", Exchange Administrator record)" if record else ")"),
                 "before": entry.get("before") or {}, "after": after})
