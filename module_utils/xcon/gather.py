"""Build the per-host op batches (one WinRM command per host per phase) and decode their answers.

The audit phase sends, in one command: the connector search, the MTA event query, the queue
counters, the service state and (optionally) the effective-rights read.  Everything version-specific
comes from the Exchange profile (xcon.profile).
"""

from __future__ import annotations

import re

import datetime as _dt

from xcon import connectors as xconn
from xcon.clock import parse_iso
from xcon import dn as xdn
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
    when = parse_iso(iso) + _dt.timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- op builders ----------------------------------------------------------------------------------
DEFAULT_LDAP_PORT = 389
DEFAULT_MTA_PORT = 102
# Q161931 / Q176466: the MTA's TCP port is the value "RFC1006 Port Number" of this key, 102 when absent.
MTA_PARAMETERS_KEY = "SYSTEM\\CurrentControlSet\\Services\\MSExchangeMTA\\Parameters"
MTA_PORT_VALUE = "RFC1006 Port Number"
WRONG_DIRECTORY = "XCON-WRONG-DIRECTORY"
NO_DIRECTORY = "XCON-NO-DIRECTORY"      # a 4.0 server with no readable replica in the inventory
# LDAP_CAP_ACTIVE_DIRECTORY_OID (MS-ADTS): listed in supportedCapabilities by Active Directory.
AD_CAPABILITY = "1.2.840.113556.1.4.800"


def _with_port(params, ldap_port):
    if ldap_port and int(ldap_port) != DEFAULT_LDAP_PORT:
        params["port"] = int(ldap_port)
    return params


def connector_search_op(server, profile, with_secrets=False, with_rights=False, op_id="connectors",
                        ldap_port=None, organization=None, resolve=True, site=None):
    """Read every connector of the site. With `organization` and `site` the search reads that site's
    Connections container only (one level); with `organization` alone it starts at o=ORG (never in
    another tree). It is always paged (a directory that caps a search would otherwise give a short
    list: search_capped); with `resolve`, host-name Stack addresses are resolved on the Windows host."""
    attributes = list(read_attributes(profile, with_secrets=with_secrets))
    if with_rights:
        attributes.append(rights_attribute(profile))
    on_org = bool(organization)       # every version the KB covers names its tree o=ORG
    params = {
        "server": server,
        "base": f"o={xconn.escape_rdn_value(organization)}" if on_org else "",
        "scope": "subtree",
        "classes": [link_class(profile)],
        "attributes": attributes,
        "page_size": profile["assumptions"]["ldap_size_limit"],
        "multi": xprofile.multi_attributes(profile) + ([rights_attribute(profile)] if with_rights else []),
    }
    if on_org and site:
        params["base"] = profile["dn"]["connections"].format(site=xconn.escape_rdn_value(site),
                                                             org=xconn.escape_rdn_value(organization))
        params["scope"] = "onelevel"
    if resolve:
        params["resolve"] = xprofile.attribute(profile, "stack_address")
    return {"id": op_id, "op": "dir_search", "params": _with_port(params, ldap_port)}


def directory_root_op(server, ldap_port=None, op_id="directory"):
    """The RootDSE of the directory at SERVER[:PORT] (read before anything else of the directory)."""
    return {"id": op_id, "op": "dir_root", "params": _with_port({"server": server}, ldap_port)}


def mta_port_op(server, op_id="mta_port"):
    return {"id": op_id, "op": "reg_read", "params": {"server": server, "key": MTA_PARAMETERS_KEY, "names": [MTA_PORT_VALUE]}}


def mta_port(result):
    """The MTA's TCP port from a reg_read answer: the RFC1006 Port Number value, else 102; None
    when the registry could not be read (never 102: see mta_port_error)."""
    if result is None or not result.ok:
        return None
    value = ((result.data or {}).get("values") or {}).get(MTA_PORT_VALUE)
    try:
        port = int(value)
    except (TypeError, ValueError):
        return DEFAULT_MTA_PORT
    return port if 1 <= port <= 65535 else DEFAULT_MTA_PORT


def mta_port_error(result):
    """Why the MTA's port is unknown (the reg_read failed or was skipped), or None when it was read."""
    if result is None:
        return None
    if result.skipped:
        return "not read: an earlier operation of the same command failed"
    if not result.ok:
        return f"{result.error_category or 'OperationFailed'} ({result.hresult}): {result.message}"
    return None


def saved_result(result, masked):
    """One OpResult as a saved run keeps it (data masked by `masked`; a failure's reason kept)."""
    saved = {"ok": result.ok, "data": masked(result.data)}
    if not result.ok:
        saved["error"] = {"category": result.error_category, "hresult": result.hresult, "message": result.message,
                          "skipped": result.skipped}
    return saved


def loaded_result(op_id, saved):
    """The OpResult a saved run kept (saved_result's inverse)."""
    error = saved.get("error") or {}
    return xops.OpResult(id=op_id, ok=saved["ok"], data=saved["data"], error_category=error.get("category"),
                         hresult=error.get("hresult"), message=error.get("message"), skipped=bool(error.get("skipped")))


SEARCH_CAPPED = "XCON-SEARCH-CAPPED"


def typed_op(op: dict, profile: dict, read_octets=()) -> dict:
    """`op` with its octet-string values typed for the on-host script, checked before anything is sent:
    a dir_modify change of an octet-string attribute carries ``octets: true``, a dir_create names them
    in ``octets``. The octet-string attributes are the profile's and those the directory answered as
    bytes (`read_octets`, a search's ``octets``). A value that is not hex text raises ValueError."""
    octets = xprofile.octet_attributes(profile) | {str(n).lower() for n in read_octets}
    as_list = xconn._as_list
    params = dict(op.get("params") or {})
    if op.get("op") == "dir_modify":
        typed = [(c, str(c.get("attribute")).lower() in octets) for c in params.get("changes") or []]
        pairs = [(c["attribute"], v) for c, octet in typed if octet for v in as_list(c.get("values"))]
        params["changes"] = [dict(c, octets=True) if octet else c for c, octet in typed]
    elif op.get("op") == "dir_create":
        names = [n for n in params.get("attributes") or {} if n.lower() in octets]
        pairs = [(n, v) for n in names for v in as_list(params["attributes"][n])]
        params["octets"] = names
    else:
        return op
    for name, value in pairs:
        if not xconn._is_hex(value):
            raise ValueError(f"{name} is an octet string: {str(value)[:80]!r} is not hex text; nothing was written")
    return dict(op, params=params)


def search_capped(result, profile):
    """Why a dir_search answer may be short (the directory cut it at its size limit), or None.
    .NET's DirectorySearcher ends a capped search without an error (its enumerator takes ADSI's
    0x80072023 for the last row), so an answer with exactly as many entries as the limit is never
    taken as complete."""
    limit = profile["assumptions"]["ldap_size_limit"]
    entries = ((result.data or {}).get("entries") or []) if result is not None and result.ok else []
    if not limit or len(entries) != limit:
        return None
    return (f"the connector search returned exactly {limit} entries, the directory's limit for one search "
            "(ldap_size_limit, an assumption): the list may have been cut short, so it is not read as complete. "
            "Raise the directory's search limit, or override ldap_size_limit with the real one")


def directory_problem(result, organization=None, ldap_port=None, server=""):
    """None when the RootDSE read is that of the Exchange 5.5 directory of `organization` (any
    organisation when None); else the reason it is not (Active Directory, or no o=ORG context)."""
    if result is None or not result.ok:
        return None  # the read failed: the failure itself is reported
    root = result.data or {}
    contexts = [str(c) for c in root.get("namingContexts") or []]
    where = f"LDAP://{server}:{ldap_port or DEFAULT_LDAP_PORT}"
    listed = ", ".join(contexts) or "none"
    if AD_CAPABILITY in (root.get("supportedCapabilities") or []) or root.get("defaultNamingContext"):
        return (f"{where} is Active Directory (naming contexts: {listed}), not the Exchange 5.5 directory: on a "
                "Windows 2000 domain controller the Exchange directory listens on another port (Q224447); set "
                "xcon_ldap_port to it")
    # Compared as values in one canonical form (xcon.dn.canonical_name): the context is DN text, with
    # RFC 4514 escapes (o=Contoso\\, Ltd), the organisation a plain name.
    organisations = [xdn.naming_context_value(c) for c in contexts]
    if organization and xdn.canonical_name(organization) not in {xdn.canonical_name(o) for o in organisations if o is not None}:
        return (f"{where} has no naming context o={organization} (naming contexts: {listed}): it is not the "
                f"Exchange 5.5 directory of organisation {organization}; check xcon_ldap_port and xcon_organization")
    if not organization and not any(c.replace(" ", "").casefold().startswith("o=") for c in contexts):
        return f"{where} has no o= naming context (naming contexts: {listed}): it is not an Exchange 5.5 directory"
    return None


def evidence_ops(server, profile, window_minutes=xev.DEFAULT_WINDOW_MINUTES):
    """The evidence ops (events, counters, service): xcon.evidence.evidence_ops, the one copy."""
    return xev.evidence_ops(server, profile, window_minutes)


def audit_directory_ops(server, profile, ldap_port=None, organization=None, check_write_access=True, with_root=True,
                        site=None):
    """The audit's directory reads on `server`'s LDAP: its RootDSE first (is it the Exchange directory
    of the organisation? an Exchange 5.0 directory has none: `with_root` False), then the connectors."""
    ops = [directory_root_op(server, ldap_port)] if with_root else []
    ops.append(connector_search_op(server, profile, with_secrets=False, with_rights=check_write_access,
                                   ldap_port=ldap_port, organization=organization, site=site))
    return ops


def audit_ops(server, profile, ldap_port=None, organization=None, check_write_access=True,
              evidence_window_minutes=xev.DEFAULT_WINDOW_MINUTES, site=None, directory=True, with_root=True):
    """The audit's one command for `server`: the directory reads (when its own directory is read,
    `directory`), the MTA evidence, then the MTA's TCP port (last, and not fatal: a registry that
    cannot be read leaves the port unknown, 102 assumed)."""
    ops = audit_directory_ops(server, profile, ldap_port, organization, check_write_access, with_root, site) if directory else []
    if evidence_window_minutes:
        ops += evidence_ops(server, profile, evidence_window_minutes)
    ops.append(mta_port_op(server))
    return ops


def run(client, ops):
    """Send the ops as one WinRM command; return {op id: OpResult}."""
    return {r.id: r for r in xops.run_ops(client, ops)}


# -- decoders -------------------------------------------------------------------------------------
def own_entries(result, server, profile):
    """The entries of a connector search that are homed on `server` (or name no home MTA). Every
    Exchange 5.5 server holds a replica of the whole organisation's directory, so a search from
    o=ORG (no xcon_site) answers every site's connectors: only the server's own are decoded, so a
    server's decoding costs the same whatever the size of the organisation."""
    name = xprofile.attribute(profile, "home_mta")
    return [e for e in result.data.get("entries", []) if _home_is(xconn.raw_attribute(e.get("attributes") or {}, name), server)]


def _home_is(home, server):
    """Whether a Home-MTA DN names `server`'s MTA; none counts as yes. One whole RDN (LDAP or X.500
    form): EXIN is not homed on EXIN55's MTA."""
    home = str(home or "").lower()
    return not home or f"cn={str(server).lower()}" in {part.strip() for part in re.split(r"[,/]", home)}


def decode_connectors(result, server, profile, names=None):
    entries = own_entries(result, server, profile)
    connectors = [xconn.decode_connector(entry, server, profile) for entry in entries]
    connectors = [c for c in connectors if _homed_on(c, server, profile)]
    if names:
        wanted = {n.lower() for n in names}
        connectors = [c for c in connectors if c["name"].lower() in wanted]
    return sorted(connectors, key=lambda c: c["name"].lower())


def homed_entries(entries, server, profile):
    """The raw connector entries whose Home-MTA is `server`'s MTA (a replica holds the whole organisation)."""
    return [e for e in entries if _homed_on(xconn.decode_connector(e, server, profile), server, profile)]


def _homed_on(connector, server, profile):
    return _home_is(connector.get("home_mta") or connector.get("attributes", {}).get(xprofile.attribute(profile, "home_mta")), server)


def anonymous_read(result, profile):
    """True when a connector search came back as an anonymous bind answers it: entries with their
    names and classes, but not one of the attributes asked for (a bound account sees them)."""
    entries = result.data.get("entries", []) if result.ok else []
    if not entries:
        return False
    naming = xprofile.attribute(profile, "name").lower()
    return all(not {k for k in (e.get("attributes") or {}) if k.lower() != naming} for e in entries)


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


def queues_by_connector(evidence, connectors, profile):
    """Re-key the evidence's per-instance queue lengths by connector directory name. Which name a
    connector's 'MSExchangeMTA Connections' instance carries is an assumption
    (ASSUMPTIONS["counter_instance"]: "rdn" = the directory name, or "display_name")."""
    if not evidence or profile["assumptions"]["counter_instance"] != "display_name":
        return evidence
    names = {str(c.get("display_name") or "").casefold(): c["name"] for c in connectors or []}
    evidence["queues"] = {names.get(str(k).casefold(), k): v for k, v in (evidence.get("queues") or {}).items()}
    return evidence


def read_evidence(client, server, version, window_minutes, since=None):
    """One command: events, counters, service of `server` -> evidence dict (raises on failure).
    With `since` (ISO time on the server's clock) the events from then on, else those of the last
    `window_minutes`."""
    profile = get_profile(version)
    results = xops.raise_first_failure(run(client, xev.evidence_ops(server, profile, window_minutes, since=since)))
    evidence = decode_evidence(results, server, None if since else window_minutes, since)
    # The op walks the log newest first and stops at MAX_EVENTS: older entries of the span may be unread.
    evidence["events_truncated"] = len(results["events"].data.get("events") or []) >= xev.MAX_EVENTS
    return evidence
