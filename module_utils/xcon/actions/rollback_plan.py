"""xcon_rollback_plan: check a run before rolling it back, and say what it wrote.

Nothing is trusted before it is checked: the run id must name a run directory under the report
directory, and every file rollback relies on (plan.json, backup/*.json, journal/*.json) must match
the SHA-256 recorded when it was written.  A --check run changed nothing: that is said plainly.
"""

from __future__ import annotations

import glob
import os

from ansible.errors import AnsibleActionFail

from xcon import state as xstate
from xcon.action import XconAction
from xcon.specs import ROLLBACK_PLAN

NOTHING = "Nothing was changed."


class ActionModule(XconAction):
    ARGUMENT_SPEC = ROLLBACK_PLAN

    def xcon_run(self, args, task_vars):
        report_dir = args["report_dir"]
        if not os.path.isabs(report_dir):
            config = task_vars.get("ansible_config_file")
            report_dir = os.path.join(os.path.dirname(os.path.abspath(config)) if config else os.getcwd(), report_dir)
        try:
            loaded = load_run(report_dir, args["run_id"], args["exchange_hosts"], args["firewall_hosts"])
        except xstate.StateError as exc:
            raise AnsibleActionFail(f"Rollback of run {args['run_id']!r} refused: {exc}. {NOTHING}") from None
        return loaded


def load_run(report_dir, run_id, exchange_hosts, firewall_hosts):
    """What rollback needs from a run, checked (raises StateError with the reason)."""
    run_dir = xstate.run_directory(report_dir, run_id)
    plan_file = os.path.join(run_dir, "plan.json")
    if not os.path.exists(plan_file):
        raise xstate.StateError(f"run {run_id} has no plan at {plan_file}: it stopped before planning, so it changed nothing")
    backups = sorted(glob.glob(os.path.join(run_dir, "backup", "*.json")))
    journals = sorted(glob.glob(os.path.join(run_dir, "journal", "*.json")))
    report = xstate.read_json(os.path.join(run_dir, "report.json"), {}) if os.path.exists(os.path.join(run_dir, "report.json")) else {}
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
    writes, unknown = {}, []
    for path in journals:
        host = os.path.basename(path)[:-len(".json")]
        if host not in exchange_hosts:
            unknown.append(host)
            continue
        writes[host] = list(reversed(xstate.read_verified_json(path)))  # newest first
    firewall_steps = {}
    for host in firewall_hosts:
        entries = [e for e in plan.get("plan", []) if e.get("target") == host and e.get("inverse")]
        # newest change first; the steps of one change in their own order (as the run planned them)
        firewall_steps[host] = [step for entry in reversed(entries) for step in entry["inverse"]]
    lines = [f"Run {run_id}: {len(backups)} backup file(s), {len(journals)} change journal(s) and the plan match their checksums."]
    for host, entries in sorted(writes.items()):
        lines.append(f"{host}: {len(entries)} write(s) of the run to undo, newest first: "
                     + ", ".join(f"{e.get('op', '').replace('dir_', '')} {e.get('name')}" for e in entries))
    for host, steps in sorted(firewall_steps.items()):
        if steps:
            lines.append(f"{host}: {len(steps)} firewall step(s) to reverse")
    warnings = [f"run {run_id} wrote to {host}, which is not in this inventory's xcon_exchange group: its writes are not undone" for host in unknown]
    result = {"run_dir": run_dir, "writes": writes, "firewall_steps": firewall_steps, "firewalls": plan.get("firewalls", {}),
              "lines": lines, "verified": [plan_file] + backups + journals}
    if warnings:
        result["warnings"] = warnings
    return result
