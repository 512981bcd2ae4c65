"""The evidence checks of one link: the KB Q196381 transparency fault, declared firewall facts
against the MTA evidence, queue backlogs and refusals nothing explains (package docstring)."""

from __future__ import annotations

from xcon.diagnose.codes import (BACKLOG_ID, BOTH_REMOTE, CONNECTOR_MISSING, FACTS_CONTRADICTED, INSIDE_REFUSAL_ID,
                                 NO_MATCH_ID, OUTSIDE_REFUSAL_IDS, QUEUE_BACKLOG, REFUSALS_UNEXPLAINED,
                                 SCHEDULE_NEVER, TRANSPARENCY_REFUSAL, event_samples, make_finding, norm)
from xcon.diagnose.links import is_remote, relay_passers, stack_in


def _reverse_effective(ctx):
    reverse = ctx.inside.reverse
    return bool(reverse) and stack_in(reverse, ctx.outside.identities)


def _kb_configuration(ctx):
    """Whether the connectors and declared facts are the KB's: Stacks at the firewall interfaces,
    a 102 relay to the inside server, transparency declared on."""
    inside_at_fw = bool(ctx.inside.primary) and stack_in(ctx.inside.primary, ctx.facing_addresses(ctx.inside))
    outside_at_fw = bool(ctx.outside.primary) and stack_in(ctx.outside.primary, ctx.facing_addresses(ctx.outside))
    relay = any(norm(p.get("target")) in ctx.inside.identities for p in relay_passers(ctx.firewall, ctx.servers, ctx.link))
    return {"inside_stack_is_firewall_internal": inside_at_fw, "outside_stack_is_firewall_external": outside_at_fw,
            "relay_on_102_declared": relay,
            "declared_client_transparency": bool((ctx.firewall or {}).get("client_transparency"))}


def check_transparency(ctx):
    """XCON-TRANSPARENCY-REFUSAL; see the module docstring for the error/warning split."""
    if (not ctx.firewall or not ctx.inside.primary or not ctx.outside.primary or ctx.never_sides()
            or is_remote(ctx.outside.primary) or ctx.both_remote() or _reverse_effective(ctx)):
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
        "outside_samples": event_samples(ctx.outside_triple()),
        "outside_queue": queue,
        "inside_events": {str(INSIDE_REFUSAL_ID): inside_1293,
                          str(NO_MATCH_ID): ctx.inside.count((NO_MATCH_ID,), ctx.inside.link_connectors, unattributed=True)},
        "inside_samples": event_samples(ctx.inside.events((INSIDE_REFUSAL_ID, NO_MATCH_ID), ctx.inside.link_connectors, unattributed=True)),
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
            return [make_finding(
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
    return [make_finding(
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


def check_facts(ctx):
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
        findings.append(make_finding(FACTS_CONTRADICTED, "warning", name, None, message, evidence))

    if not declared and seen_outside:
        add(f"Firewall {name} is declared with client-side transparency off, but {ctx.inside.host} "
            f"logged event 9301 with {ctx.outside.host}'s own address {', '.join(seen_outside)}: the "
            "source address is not rewritten. Correct the inventory (the diagnosis follows the evidence).",
            declared_client_transparency=False, observed="original source address")
    elif (not declared and ctx.inside.primary and ctx.outside.primary and not ctx.never_sides()
          and stack_in(ctx.inside.primary, ctx.facing_addresses(ctx.inside))
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
    outside_at_fw = ctx.outside.primary and stack_in(ctx.outside.primary, ctx.facing_addresses(ctx.outside))
    arrived = ctx.inside_1293_count() > 0 or bool(seen_outside)
    relay = any(norm(p.get("target")) in ctx.inside.identities for p in relay_passers(ctx.firewall, ctx.servers, ctx.link))
    if outside_at_fw and arrived and not relay:
        add(f"No service passer on TCP {ctx.port} to {ctx.inside.host} is declared on firewall {name}, but "
            f"{ctx.outside.host}'s associations addressed to the firewall reach {ctx.inside.host} "
            "(events 1293/9301): a relay exists. Correct the inventory.",
            declared_passers=(ctx.firewall.get("passers") or []), observed="associations relayed")
    return findings


def check_queues(ctx):
    threshold = int(ctx.options["queue_threshold"])
    findings = []
    for side in ctx.sides:
        for connector in side.link_connectors:
            queue = side.queue(connector)
            if queue <= threshold:
                continue
            backlog = side.events((BACKLOG_ID,), [connector])
            findings.append(make_finding(
                QUEUE_BACKLOG, "warning", side.host, connector.get("name"),
                f"{queue} messages are queued on {side.host} for connector {connector.get('name')} "
                f"(threshold {threshold}).",
                {"queue_length": queue, "threshold": threshold, "events_659": len(backlog),
                 "samples": event_samples(backlog), "work_queue": (side.evidence or {}).get("work_queue")}))
    return findings


def check_unexplained(ctx, findings):
    explaining = {TRANSPARENCY_REFUSAL, SCHEDULE_NEVER, BOTH_REMOTE, CONNECTOR_MISSING}
    if any(f["code"] in explaining for f in findings) or not ctx.outside.primary:
        return []
    triple = ctx.outside_triple_count()
    if not triple:
        return []
    hint = (f" Reverse connector {ctx.inside.reverse.get('name')} is in place: if it was created "
            f"recently, check that {ctx.inside.host}'s MTA was restarted since." if _reverse_effective(ctx) else "")
    return [make_finding(
        REFUSALS_UNEXPLAINED, "warning", ctx.outside.host, ctx.outside.primary.get("name"),
        f"{ctx.outside.host} logs {triple} refused or failed associations (1290/289/1294) for connector "
        f"{ctx.outside.primary.get('name')}, but {ctx.inside.host} shows no refusal that explains them "
        f"(check the MTA service, the network path and the Stack addresses).{hint}",
        {"outside_events": ctx.outside.counts_by_id(OUTSIDE_REFUSAL_IDS, [ctx.outside.primary]),
         "samples": event_samples(ctx.outside_triple()),
         "inside_service": (ctx.inside.evidence or {}).get("service")})]
