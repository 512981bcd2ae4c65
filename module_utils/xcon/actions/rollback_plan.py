"""xcon_rollback_plan: check a run before rolling it back, and say what it wrote.

Nothing is trusted before it is checked: the run id must name a run directory under the report
directory, and every file rollback relies on (plan.json, backup/*.json, journal/*.json) must match
the SHA-256 recorded when it was written.  A --check run changed nothing: that is said plainly.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from xcon import state as xstate
from xcon.action import XconAction
from xcon.mask import MASK
from xcon.specs import ROLLBACK_PLAN

NOTHING = "Nothing was changed."
TRANSACTION = "transaction.json"  # the gates' record of the run (xcon_link_gate)


class ActionModule(XconAction):
    ARGUMENT_SPEC = ROLLBACK_PLAN

    def xcon_run(self, args, task_vars):
        report_dir = xstate.report_root(args["report_dir"], task_vars.get("ansible_config_file"))
        try:
            loaded = load_run(report_dir, args["run_id"], args["exchange_hosts"], args["firewall_hosts"])
        except xstate.StateError as exc:
            raise AnsibleActionFail(f"Rollback of run {args['run_id']!r} refused: {exc}. {NOTHING}") from None
        return loaded


def load_run(report_dir, run_id, exchange_hosts, firewall_hosts):
    """What rollback needs from a run, checked (raises StateError with the reason)."""
    run_dir = xstate.run_directory(report_dir, run_id)
    plan_file = own_path(run_dir, "plan.json")
    if not os.path.exists(plan_file):
        raise xstate.StateError(f"run {run_id} has no plan at {plan_file}: it stopped before planning, so it changed nothing")
    backups = own_files(run_dir, "backup")
    journals = own_files(run_dir, "journal")
    report_file = own_path(run_dir, "report.json")
    report = xstate.read_json(report_file, {}) if os.path.exists(report_file) else {}
    plan_head = xstate.read_json(plan_file, {}) or {}
    if plan_head.get("check_mode") or (report.get("check_mode") and not backups and not journals):
        raise xstate.StateError(f"run {run_id} was a --check audit: it changed nothing and kept no backup, so there is nothing to roll back")
    for path in [plan_file] + backups + journals:
        xstate.verify_checksum(path)  # before anything is used
    plan = xstate.read_verified_json(plan_file)
    if not plan.get("journal") and any(e.get("action") in ("modify", "create") for e in plan.get("plan", [])):
        # Undoing only its firewall steps would leave the connectors pointing at a path that is gone.
        raise xstate.StateError(f"run {run_id} was made by an earlier version of fix-xcon that kept no change journal, so rollback "
                                f"cannot tell what it wrote; restore its connectors by hand from {run_dir}/backup/ and its firewall "
                                f"from its change records")
    records = {os.path.basename(path)[:-len(".json")]: xstate.read_verified_json(path) for path in journals}
    transaction = load_transaction(run_dir, plan)
    reconcile(run_dir, plan.get("plan", []), transaction, records, lambda host: load_backup(run_dir, host))
    writes, unknown = {}, []
    for host, entries in sorted(records.items()):
        if host not in exchange_hosts:
            unknown.append(host)
            continue
        writes[host] = list(reversed(entries))  # newest first
    firewall_steps = {}
    for host in firewall_hosts:
        entries = [e for e in plan.get("plan", []) if e.get("target") == host and e.get("inverse")]
        # newest change first; the steps of one change in their own order (as the run planned them)
        firewall_steps[host] = [step for entry in reversed(entries) for step in entry["inverse"]]
    lines = [f"Run {run_id}: {len(backups)} backup file(s), {len(journals)} change journal(s), the plan and the transaction "
             "record match their checksums and agree with each other."]
    for host, entries in sorted(writes.items()):
        lines.append(f"{host}: {len(entries)} write(s) of the run to undo, newest first: "
                     + ", ".join(f"{e.get('op', '').replace('dir_', '')} {e.get('name')}" for e in entries))
    for host, steps in sorted(firewall_steps.items()):
        if steps:
            lines.append(f"{host}: {len(steps)} firewall step(s) to reverse")
    warnings = [f"run {run_id} wrote to {host}, which is not in this inventory's xcon_exchange group: its writes are not undone" for host in unknown]
    result = {"run_dir": run_dir, "writes": writes, "firewall_steps": firewall_steps, "firewalls": plan.get("firewalls", {}),
              "lines": lines, "verified": [plan_file] + backups + journals + ([own_path(run_dir, TRANSACTION)] if transaction else [])}
    if warnings:
        result["warnings"] = warnings
    return result


# -- the run's records, each checked against the others --------------------------------------------
def own_path(run_dir, *parts):
    """A path of the run's own records; refused when it or a folder on the way is a symbolic link
    (rollback never reads a record from outside the run directory)."""
    path = run_dir
    for part in parts:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise xstate.StateError(f"{path} is a symbolic link (to {os.readlink(path)}): rollback reads only the run's own "
                                    "records, never what a link points at")
    return path


def own_files(run_dir, folder):
    """The records (*.json) of a folder of the run, none of them a symbolic link."""
    path = own_path(run_dir, folder)
    if not os.path.isdir(path):
        return []
    return [own_path(run_dir, folder, name) for name in sorted(os.listdir(path))
            if name.endswith(".json") and not name.startswith(".")]


def load_transaction(run_dir, plan):
    """The run's transaction record (which planned change ran, with what outcome), checked; None when
    the run planned nothing."""
    path = own_path(run_dir, TRANSACTION)
    if not plan.get("plan"):
        return None
    if not os.path.exists(path):
        raise xstate.StateError(f"the run's transaction record {path} is missing: it says which planned change ran, and "
                                "without it nothing tells a run that stopped before its first change from one whose records "
                                "were removed")
    return xstate.read_verified_json(path)


def load_backup(run_dir, host):
    path = own_path(run_dir, "backup", f"{host}.json")
    if not os.path.exists(path):
        raise xstate.StateError(f"the backup of {host} ({path}) is missing, so the journal's values cannot be checked against it")
    return {str(e.get("dn", "")).lower(): e.get("attributes") or {} for e in (xstate.read_verified_json(path) or {}).get("raw", [])}


def _value(attributes, name):
    key = next((k for k in attributes if k.lower() == name.lower()), None)
    return attributes.get(key) if key is not None else None


def reconcile(run_dir, plan, transaction, journals, backup_of):
    """Refuse (StateError) unless plan, transaction record, journal and backup tell one story: every
    change the transaction says succeeded on a server has its journaled write, every journaled write
    is a change of the plan, a modified object was in the backup and a created one was not, and each
    attribute's "before" is what the backup (or the run's previous write of it) held."""
    outcomes = (transaction or {}).get("outcomes") or {}
    wanted = {"modify": "dir_modify", "create": "dir_create"}
    planned = {}
    for entry in plan:
        if entry.get("action") in wanted:
            name = (entry.get("args") or {}).get("name") or entry.get("connector") or entry.get("object")  # what xcon_connector wrote
            key = (str(entry.get("target")), str(name or "").lower(), wanted[entry["action"]])
            planned.setdefault(key, []).append(entry)
    journaled = {(host, str(e.get("name", "")).lower(), e.get("op")) for host, entries in journals.items() for e in entries or []}
    for key, entries in sorted(planned.items()):
        for entry in entries:
            if (outcomes.get(entry.get("id")) or {}).get("ok") and key not in journaled:
                raise xstate.StateError(
                    f"change {entry.get('id')} ({entry.get('description') or entry.get('object')}) succeeded on {key[0]} "
                    f"({TRANSACTION}), but {os.path.join(run_dir, 'journal', key[0] + '.json')} has no record of that write")
    for host, entries in sorted(journals.items()):
        if not isinstance(entries, list):
            raise xstate.StateError(f"the journal of {host} is not a list of writes")
        backup = backup_of(host)
        values = {}
        for number, entry in enumerate(entries, start=1):
            key = (host, str(entry.get("name", "")).lower(), entry.get("op"))
            where = f"write {number} of {os.path.join(run_dir, 'journal', host + '.json')} ({entry.get('op')} {entry.get('name')})"
            if key not in planned:
                raise xstate.StateError(f"{where} is no change of the run's plan")
            dn = str(entry.get("dn", "")).lower()
            if entry.get("op") == "dir_create":
                if dn in backup:
                    raise xstate.StateError(f"{where} created {entry.get('dn')}, which the backup shows existed before the run")
                continue
            if dn not in backup:
                raise xstate.StateError(f"{where} changed {entry.get('dn')}, which the backup of {host} does not hold")
            for name, change in sorted((entry.get("attributes") or {}).items()):
                change = change if isinstance(change, dict) else {}
                held = values.get((dn, name.lower()), _value(backup[dn], name))
                before = change.get("before")
                if before != MASK and before != held:
                    raise xstate.StateError(f"{where}: {name} before the write is {before!r} in the journal but {held!r} in the "
                                            "backup (or the run's previous write): the records disagree")
                values[(dn, name.lower())] = change.get("written")
