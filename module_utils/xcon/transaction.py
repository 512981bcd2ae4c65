"""Per-link transactions: which links may take their next step, and where a link stopped (pure).

A link's changes run in phases (playbooks/remediate.yml, in this order): back up, preconditions,
reverse connector, open the new firewall path, repoint the inside server's Stack address, then the
outside server's, close the old firewall path (remove the relays; transparency off), restart the MTAs.  A phase's changes of a link run only
when every change of that link in an earlier phase succeeded, on every server and the firewall; the
first failure stops the link there.  The order makes every stop safe: the old path is closed and
the MTAs restarted only after everything else of the link is in place.

An MTA restart activates every change made on its server, so a server on which a stopped link has
an applied change is not restarted (its restart stays pending, as a marker, for the re-run).

Inputs are plain data gathered by the xcon_link_gate action from the hosts' registered results:
``outcomes`` (plan entry id -> ``{"ok", "reason"}``), ``backups`` and ``restarts`` (inventory host ->
``{"ok", "reason"}``) and ``host_errors`` (host -> reason when a change task failed as a whole).
"""

from __future__ import annotations

PHASES = ("backup", "precondition", "reverse_connector", "firewall_tunnel_open", "stack_repoint",
          "stack_repoint_outside", "firewall_tunnel_close", "transparency_off", "mta_restart", "final")

# What a stop before each phase leaves in place (said in the report, per link).
SAFE_STATE = {
    "backup": "nothing was changed for this link",
    "precondition": "nothing was changed for this link",
    "reverse_connector": "only preconditions (schedule, two-way alternate) may have been set; mail takes its old path",
    "firewall_tunnel_open": "only preconditions may have been set; mail takes its old path",
    "stack_repoint": "the new firewall path may be open; the relays (old path) are still in place",
    "stack_repoint_outside": ("the inside server points at the outside server (it accepts its associations); the outside "
                              "server and the relays (old path) are unchanged"),
    "firewall_tunnel_close": "the new path is open and the relays (old path) are still in place; no MTA was restarted for this link",
    "transparency_off": "the firewall's transparency is unchanged; no MTA was restarted for this link",
    "mta_restart": "every change is in place but not activated: the MTA restart is left pending",
    "final": "every change is in place; the MTA restart failed and is left pending",
}


def phase_index(phase):
    return PHASES.index(phase)


def _entry_key(entry):
    return (phase_index(entry.get("phase", "final")) if entry.get("phase") in PHASES else len(PHASES), entry.get("step", 0))


def link_states(plan, phase, outcomes=None, backups=None, restarts=None, host_errors=None):
    """Each link's state before `phase` runs.

    Returns ``{"links": {link: state}, "stopped": [link, ...], "restart_withheld": {host: [link, ...]}}``
    where ``state`` is ``{"state": "open" | "complete" | "stopped", "steps_total", "steps_done",
    "stopped_at": None | {"step", "change", "phase", "host", "description", "reason", "safe"},
    "not_run": [entry id, ...]}``.  ``open``: nothing failed so far and later phases remain.
    """
    outcomes, backups, restarts, host_errors = outcomes or {}, backups or {}, restarts or {}, host_errors or {}
    gate = phase_index(phase)
    by_link = {}
    for entry in plan or []:
        by_link.setdefault(entry["link"], []).append(entry)
    links, withheld = {}, {}
    for link_id, entries in sorted(by_link.items()):
        entries = sorted(entries, key=_entry_key)
        connector_hosts = sorted({e["target"] for e in entries if e.get("kind") != "firewall"})
        stopped_at = None
        if gate > phase_index("backup"):
            for host in connector_hosts:
                backup = backups.get(host)
                if not backup or not backup.get("ok"):
                    reason = (backup or {}).get("reason") or host_errors.get(host) or "no backup was taken on this server"
                    stopped_at = {"step": 0, "change": None, "phase": "backup", "host": host,
                                  "description": f"{host}: back up the connectors before any change", "reason": reason}
                    break
        # Changes of one phase run in parallel on different servers: one may have succeeded after
        # another failed, so every successful change counts as done.
        done = [e["id"] for e in entries if _entry_key(e)[0] < gate and (outcomes.get(e["id"]) or {}).get("ok")]
        if stopped_at is None:
            for entry in entries:
                if _entry_key(entry)[0] >= gate:
                    break
                if entry["id"] in done:
                    continue
                outcome = outcomes.get(entry["id"])
                reason = (outcome or {}).get("reason") or host_errors.get(entry["target"]) or \
                    f"the change did not run on {entry['target']} (the host dropped out of the run)"
                stopped_at = {"step": entry.get("step"), "change": entry["id"], "phase": entry.get("phase"), "host": entry["target"],
                              "description": entry.get("description", ""), "reason": reason}
                break
        if stopped_at is None and gate > phase_index("mta_restart"):
            for host in connector_hosts:
                restart = restarts.get(host)
                if restart and not restart.get("ok"):
                    stopped_at = {"step": "restart", "change": None, "phase": "mta_restart", "host": host,
                                  "description": f"{host}: restart the MTA to activate the changes", "reason": restart.get("reason") or "failed"}
                    break
        if stopped_at is not None:
            stopped_at["safe"] = SAFE_STATE.get(stopped_at["phase"], "")
            state = "stopped"
            # An applied but not yet activated change: its server's restart would activate it.
            for entry in entries:
                if entry["id"] in done and entry.get("kind") != "firewall":
                    withheld.setdefault(entry["target"], [])
                    if link_id not in withheld[entry["target"]]:
                        withheld[entry["target"]].append(link_id)
        else:
            state = "complete" if gate > phase_index("mta_restart") else "open"
        links[link_id] = {"state": state, "steps_total": len(entries), "steps_done": len(done), "stopped_at": stopped_at,
                          "not_run": [e["id"] for e in entries if e["id"] not in done] if stopped_at else []}
    return {"links": links, "stopped": sorted(l for l, s in links.items() if s["state"] == "stopped"),
            "restart_withheld": withheld if gate >= phase_index("mta_restart") else {}}


def stop_line(link_id, state, rerun_command=""):
    """One sentence for people: where the link stopped, why, what is in place, what to do."""
    where = state["stopped_at"]
    step = "before any change (backup)" if where["step"] == 0 else (
        "at the MTA restart" if where["step"] == "restart" else f"at step {where['step']} ({where['phase']})")
    line = f"{link_id} stopped {step} on {where['host']}: {where['reason']}. In place: {where['safe']}."
    if rerun_command:
        line += f" Remove the cause, then re-run: {rerun_command}"
    return line
