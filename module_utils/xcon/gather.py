"""Build the per-host op batches (one WinRM command per host per phase) and decode their answers.

The audit phase sends, in one command: the connector search, the MTA event query, the queue
counters, the service state and (optionally) the effective-rights read.  Everything version-specific
comes from the Exchange profile (xcon.profile).
"""

from __future__ import annotations

import datetime as _dt

from xcon import connectors as xconn
from xcon import evidence as xev
from xcon import ops as xops
from xcon import profile as xprofile
from xcon.winrm_client import WinRMClient

# The MSExchangeMTA event ids and the evidence ops live in one place: xcon.evidence.


def client_for(connection_vars):
    return WinRMClient(connection_vars)


def get_profile(version, overrides=None):
    return xprofile.get_profile(str(version), overrides)


def read_attributes(profile, with_secrets=False):
    """Every property-page attribute, secrets only when asked (cloning needs them, audits never)."""
    secrets = xprofile.secret_attributes(profile)
    return [a for a in xprofile.property_page_attributes(profile) if with_secrets or a.lower() not in secrets]


def link_class(profile):
    return profile["object_class"]


def rights_attribute(profile):
    """The constructed attribute listing what the account may write (see ASSUMPTIONS)."""
    return profile["assumptions"]["rights_attribute"]


def add_minutes(iso, minutes):
    """ISO-8601 UTC time `iso` plus `minutes`, in the same format."""
    when = parse_time(iso) + _dt.timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(iso):
    return _dt.datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.timezone.utc)


# -- op builders ----------------------------------------------------------------------------------
def connector_search_op(server, profile, with_secrets=False, with_rights=False, op_id="connectors"):
    attributes = list(read_attributes(profile, with_secrets=with_secrets))
    if with_rights:
        attributes.append(rights_attribute(profile))
    return {
        "id": op_id,
        "op": "dir_search",
        "params": {
            "server": server,
            "base": "",
            "scope": "subtree",
            "classes": [link_class(profile)],
            "attributes": attributes,
        },
    }


def evidence_ops(server, profile):
    """The evidence ops (events, counters, service): xcon.evidence.evidence_ops, the one copy."""
    return xev.evidence_ops(server, profile)


def run(client, ops):
    """Send the ops as one WinRM command; return {op id: OpResult}."""
    return {r.id: r for r in xops.run_ops(client, ops)}


# -- decoders -------------------------------------------------------------------------------------
def decode_connectors(result, server, profile, names=None):
    entries = result.data.get("entries", [])
    connectors = [xconn.decode_connector(entry, server, profile) for entry in entries]
    connectors = [c for c in connectors if _homed_on(c, server)]
    if names:
        wanted = {n.lower() for n in names}
        connectors = [c for c in connectors if c["name"].lower() in wanted]
    return sorted(connectors, key=lambda c: c["name"].lower())


def _homed_on(connector, server):
    home = str(connector.get("home_mta") or connector.get("attributes", {}).get("Home-MTA") or "")
    return not home or f"cn={server.lower()}" in home.lower()


def anonymous_read(result):
    """True when a connector search came back as an anonymous bind answers it: entries with their
    names and classes, but not one of the attributes asked for (a bound account sees them)."""
    entries = result.data.get("entries", []) if result.ok else []
    if not entries:
        return False
    return all(not {k for k in (e.get("attributes") or {}) if k.lower() != "rdn"} for e in entries)


def write_access(result, profile):
    """True when the account may write the connectors' attributes (every entry writable)."""
    attr = rights_attribute(profile)
    entries = result.data.get("entries", [])
    answered = [e for e in entries if attr in e.get("attributes", {})]
    if not answered:
        return None  # the directory does not serve the attribute: unknown, not denied
    return all(e["attributes"][attr] for e in answered)


def decode_evidence(results, server, window_minutes, not_before=None):
    """Evidence of the last `window_minutes` of the server's clock, and never older than
    `not_before` (the server's time when the toolkit last verified a change on it: older events
    describe a configuration that no longer runs)."""
    events = results["events"].data
    now = events.get("now")
    since = add_minutes(now, -window_minutes) if now and window_minutes else None
    if not_before and (since is None or not_before > since):
        since = not_before
    in_window = [e for e in events.get("events", []) if since is None or e.get("time", "") >= since]
    return xev.build_evidence(server, since, {"now": now, "events": in_window}, results["counters"].data, results["service"].data)


def read_evidence(client, server, version, window_minutes):
    """One command: events, counters, service of `server` -> evidence dict (raises on failure)."""
    profile = get_profile(version)
    results = xops.raise_first_failure(run(client, evidence_ops(server, profile)))
    return decode_evidence(results, server, window_minutes)
