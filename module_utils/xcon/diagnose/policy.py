"""The workaround policy: which workaround a diagnosed link gets (package docstring, "Workaround policy")."""

from __future__ import annotations

from xcon.diagnose.codes import (BOTH_REMOTE, CONNECTOR_MISSING, FIREWALL_UNKNOWN, REQUESTABLE, SCHEDULE_NEVER, SCHEDULE_NOT_ALWAYS,
                                 TRANSPARENCY_REFUSAL, TUNNEL_DRIVERS, TWA_OFF, X400_PORT, merged_options)
from xcon.diagnose.context import Side
from xcon.diagnose.links import firewall_dependents, has_routed_path, identities, relay_passers, stack_in


def finding_codes(link):
    return {f["code"]: f for f in link.get("findings") or []}


def _write_denied_only(link):
    """Whether every ``unknown`` finding of the link is a server read but not writable."""
    unknown = [f for f in link.get("findings") or [] if f["severity"] == "unknown"]
    return bool(unknown) and all((f.get("evidence") or {}).get("write_access") is False for f in unknown)


def _partly_in_place(workaround, link, servers, firewall):
    """Whether `workaround` was started on this link (an explicit re-run then completes it)."""
    if workaround == "reverse_connector":
        return bool(link["inside"].get("reverse_connector"))
    if workaround == "firewall_tunnel" and firewall:
        inside, outside = link["inside"]["host"], link["outside"]["host"]
        if has_routed_path(firewall, inside, outside, link.get("mta_port") or X400_PORT):
            return True
        for role, peer in (("inside", outside), ("outside", inside)):
            side = Side(link, role, servers)
            if side.primary and stack_in(side.primary, identities(servers.get(peer), peer)):
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
    if FIREWALL_UNKNOWN in codes:
        return "none", (f"Firewall {codes[FIREWALL_UNKNOWN]['host']} may sit on this link and its facts are unknown; nothing is "
                        "planned until they are known (XCON-FIREWALL-UNKNOWN).")
    if link.get("status") == "unknown" and not kb:
        if _write_denied_only(link):
            return "none", ("The account may read but not modify the connectors of this link (XCON-ACCESS-DENIED); "
                            "nothing is planned until it runs with an account that may.")
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
        return "reverse_connector", (f"A firewall tunnel would remove the TCP {link.get('mta_port') or X400_PORT} relay that other connectors still use ({names}); "
                                     "the reverse connector leaves them untouched.")
    return "firewall_tunnel", (f"KB Q196381's preferred workaround: route TCP {link.get('mta_port') or X400_PORT} between the two servers and point both "
                               f"connectors at each other; firewall {firewall.get('name')} ({firewall.get('driver')} driver) can be changed.")
