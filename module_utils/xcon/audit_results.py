"""What the audit left for the diagnosis, per Exchange host (xcon_diagnose's inputs): the host's own
summary in the fleet read's result, its full result file, and the server as the diagnosis knows it."""

from __future__ import annotations

import json

from xcon import errors as xerr


def server_entry(name, host, audit, var):
    """What the diagnosis knows of one Exchange server: its audit result and, from `var(name,
    default)` (its host variables), its address, FQDN and Exchange version."""
    return {
        "name": name,
        "inventory_host": host,
        "address": var("xcon_server_address"),
        "fqdn": var("xcon_server_fqdn"),
        "exchange_version": str(var("xcon_exchange_version", "5.5")),
        "connectors": audit.get("connectors", []),
        "evidence": audit.get("evidence"),
        "write_access": audit.get("write_access"),
        "mta_port": audit.get("mta_port"),
        "mta_port_error": audit.get("mta_port_error"),
        "directory": audit.get("directory"),
        "error": audit.get("xcon_error") or (None if audit.get("connectors") is not None else {"code": xerr.UNREACHABLE, "reason": audit.get("msg") or "not read (the host failed before its audit)"}),
    }


def own_result(registered, host):
    """The host's own audit summary: xcon_connector_info's fleet read (one task for the play, its
    result registered on every host) keeps one per host under ``hosts``; a host the fleet read did
    not cover (it was not in the play) has none, and is reported not read."""
    if isinstance(registered, dict) and isinstance(registered.get("hosts"), dict):
        return registered["hosts"].get(host) or {}
    return registered


def load_result_file(audit):
    """The full audit result of a host whose registered result names a ``result_file``
    (xcon_connector_info's option for fleets); a missing or unreadable file makes the host unknown."""
    path = audit.get("result_file")
    if not path:
        return audit
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        return {"xcon_error": {"code": xerr.FAILED, "reason": f"the audit result {path} could not be read: {exc}"}}
