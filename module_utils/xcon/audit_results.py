"""What the audit left for the diagnosis, per Exchange host (xcon_diagnose's inputs): the host's own
summary in the fleet read's result, its full result file, and the server as the diagnosis knows it;
and, for the transaction gate, one host's outcome in a fleet task's result (the back-up, the MTA
restart) or in its own task's."""

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


def host_outcome(registered, host):
    """{"ok", "reason"} of one host in a registered result that may be a fleet task's (one task for
    the play, each host's outcome under ``hosts``, ``xcon_error`` when it failed) or the host's own
    task's (``failed``/``unreachable``, ``msg``).  A host a fleet task did not cover failed: the
    transaction gate must never take a server that was not backed up for one that was."""
    if isinstance(registered, dict) and isinstance(registered.get("hosts"), dict):
        own = registered["hosts"].get(host)
        if not isinstance(own, dict):
            return {"ok": False, "reason": f"{host} was not covered by the task (not in its play)"}
        error = own.get("xcon_error")
        if error or own.get("failed"):
            error = error or {}
            code = f" ({error['code']})" if error.get("code") else ""
            return {"ok": False, "reason": f"{failure_reason({'msg': error.get('reason') or own.get('msg')})}{code}"}
        return {"ok": True, "reason": ""}
    if registered.get("failed") or registered.get("unreachable"):
        return {"ok": False, "reason": failure_reason(registered)}
    return {"ok": True, "reason": ""}


def failure_reason(result):
    """A failed task's own words (its msg)."""
    return str(result.get("msg") or "failed").strip()


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
