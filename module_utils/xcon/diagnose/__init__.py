"""Pair X.400 connectors into links, diagnose each link and choose its workaround (pure Python).

Where each part lives: ``links`` (link discovery, firewall and connector topology queries),
``context`` (a link's two sides and their evidence), ``checks`` (configuration checks),
``evidence_checks`` (the KB fault, declared firewall facts, queues, unexplained refusals),
``policy`` (the workaround); this module runs them in order (every finding is in place before the
policy runs) and is the public face the rest of the toolkit imports.

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
XCON-STACK-ADDRESS                     warning      a primary's Stack (or what its host name resolves
                                                    to on the Windows host) is neither the firewall
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
XCON-MTA-PORT-MISMATCH                 error        the two MTAs use different RFC1006 ports
XCON-MTA-PORT-UNKNOWN                  warning      a server's RFC1006 port could not be read (the
                                                    port used instead is named, never silently 102)
                                                    (Q176466); the link's port is the inside one's
XCON-WRONG-DIRECTORY                   unknown      the LDAP endpoint read is not the organisation's
                                                    Exchange 5.5 directory (a read error, below)
XCON-UNREACHABLE / XCON-ACCESS-DENIED  unknown      a server of the link could not be read (any
                                                    other read failure keeps its own code, also
                                                    severity unknown)
XCON-ACCESS-DENIED                     unknown      a server was read with an account that may not
                                                    modify its connectors (``write_access`` false)
XCON-FIREWALL-UNKNOWN                  unknown      a firewall the link may cross has no usable facts
                                                    (not read, or its sides and interfaces left out
                                                    of the inventory); nothing is planned
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
link not fully readable (or not writable) and no KB finding      ``none``
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

from xcon import firewall as fw
from xcon.diagnose import checks, evidence_checks
from xcon.diagnose.codes import *  # noqa: F401,F403  (the codes and constants are part of this API)
from xcon.diagnose.codes import link_status, norm, sort_key
from xcon.diagnose.context import LinkContext, Side  # noqa: F401
from xcon.diagnose.links import (address_for, discover_links, firewall_dependents, has_routed_path,  # noqa: F401
                                 identities, link_port, relay_passers, stack_in, stack_keys)
from xcon.diagnose.policy import finding_codes, select_workaround  # noqa: F401

# In this order; the refusals check runs last, on what the others found.
CHECKS = (checks.check_read_errors, checks.check_firewall_unknown, checks.check_write_access, checks.check_missing_connector, checks.check_never,
          checks.check_both_remote, checks.check_not_always, evidence_checks.check_transparency, checks.check_twa,
          checks.check_stack, checks.check_reverse, evidence_checks.check_facts, evidence_checks.check_queues,
          checks.check_mta_port)


def diagnose_link(link, servers, firewall, options=None, requested=None):
    """A copy of `link` with ``findings``, ``status``, ``recommended_workaround`` and ``reason``;
    with `requested` (xcon_workaround) also ``workaround_chosen`` and ``workaround_reason``, which
    xcon.plan plans from.  Every finding is in place before the policy runs; the policy runs once
    per link (once more for an explicit request, which is a different question)."""
    link = copy.deepcopy(link)
    ctx = LinkContext(link, servers, firewall, options)
    findings = []
    for check in CHECKS:
        findings.extend(check(ctx))
    findings.extend(evidence_checks.check_unexplained(ctx, findings))
    link.pop("unknown_firewalls", None)
    link["findings"] = sorted(findings, key=sort_key)
    link["status"] = link_status(findings)
    link["recommended_workaround"], link["reason"] = select_workaround(link, "auto", servers, firewall, options)
    if requested is not None:
        link["workaround_chosen"], link["workaround_reason"] = (
            (link["recommended_workaround"], link["reason"]) if requested == "auto"
            else select_workaround(link, requested, servers, firewall, options))
    return link


def diagnose(servers, firewalls, options=None, requested=None):
    """discover_links + diagnose_link for every link.  A firewall whose facts are unknown (not read, or
    left out of the inventory: xcon.firewall.unknown_reason) is no link's firewall; every link it may
    sit on - between its declared sides, or any link no known firewall is on when its sides are not
    declared - gets XCON-FIREWALL-UNKNOWN, which keeps the link unknown and unchanged."""
    known = [f for f in firewalls or [] if not fw.unknown_reason(f)]
    blind = [f for f in firewalls or [] if fw.unknown_reason(f)]
    by_name = {norm(f.get("name")): f for f in known}
    links = []
    for link in discover_links(servers, firewalls):
        firewall = by_name.get(norm(link["firewall"]))
        unknown = [f for f in blind if norm(f.get("name")) == norm(link["firewall"])
                   or (firewall is None and not (f.get("inside") and f.get("outside")))]
        if unknown:
            link = dict(link, unknown_firewalls=[{"name": f.get("name"), "reason": fw.unknown_reason(f)} for f in unknown])
        links.append(diagnose_link(link, servers, firewall, options, requested))
    return links
