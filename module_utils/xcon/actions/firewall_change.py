"""xcon_firewall_change: carry out a firewall change record through the firewall's driver.

raptor (guided): render the record and the console steps, hand them to the operator (or to an
operator command, e.g. the lab), record the confirmation; never trust it - the playbook verifies
by observing mail flow.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from xcon import firewall as fw
from xcon import operator
from xcon import state as xstate
from xcon.action import XconAction
from xcon.specs import FIREWALL_CHANGE


class ActionModule(XconAction):
    ARGUMENT_SPEC = FIREWALL_CHANGE
    MUTUALLY_EXCLUSIVE = [["steps", "plan_phase"]]
    REQUIRED_ONE_OF = [["steps", "plan_phase"]]

    def xcon_run(self, args, task_vars):
        name = args["name"]
        if args.get("steps") is None:
            args = dict(args, steps=self.planned_steps(task_vars, args["plan_phase"], args["stopped_links"]))
        try:
            # The audit's facts, overlaid with what earlier phases of this run (or earlier runs) had
            # confirmed, so a second phase is planned against the firewall as it is now.
            current = fw.facts_with_state(name, self.current_facts(args, task_vars), args.get("state_file"))
            # --check confirms nothing, so a later phase previews against the firewall as the
            # earlier phases of this run would leave it (kept beside this run's change records).
            preview = os.path.join(args["record_dir"], f"{name}.check-mode-preview.json") if self._task.check_mode else None
            current = dict(current, **xstate.read_json(preview, {})) if preview else current
            steps, after = fw.pending_steps(current, args["steps"])
        except fw.FirewallError as exc:
            raise AnsibleActionFail(f"firewall change record for {name}: {exc}") from exc
        record = fw.firewall_change_record(current, steps, args["run_id"])
        record["product"] = args["product"]
        instructions = fw.operator_instructions(record, args["product"]) if steps else "Nothing to change on this firewall."
        result = {"record": record, "instructions": instructions, "changed": bool(steps)}
        if not steps:
            result.update(status="nothing_to_do", changed=False)
            return result
        before = {k: current[k] for k in ("passers", "routed_paths", "client_transparency")}
        result["diff"] = {"before": fw_json(before), "after": fw_json({k: after[k] for k in before}),
                          "before_header": f"firewall {name}", "after_header": f"firewall {name} (after the operator's change)"}
        if self._task.check_mode:
            xstate.write_json_atomic(preview, {k: after[k] for k in before})
            result["status"] = "awaiting_operator"
            return result
        record_path = os.path.join(args["record_dir"], f"{name}-{len(os.listdir(args['record_dir'])) if os.path.isdir(args['record_dir']) else 0:02d}.json")
        result.update(operator.hand_off(record, record_path, instructions, args.get("operator_command"), args["confirmed"]))
        if result["status"] == "awaiting_operator":
            result["changed"] = False
        elif args.get("state_file"):
            fw.record_confirmed(args["state_file"], after, record)
        return result

    def current_facts(self, args, task_vars):
        """`current`, else the facts xcon_firewall_facts registered for this host, as stored: given as
        an argument, Ansible templated and finalized every rule of every link first (issue 19)."""
        if args.get("current") is not None:
            return args["current"]
        registered = self._registered(task_vars, "xcon_firewall_facts_result", task_vars.get("inventory_hostname"))
        facts = registered.get("firewall") if isinstance(registered, dict) else None
        return facts if isinstance(facts, dict) else {}

    def planned_steps(self, task_vars, phase, stopped_links):
        """The host's planned steps of `phase`, in plan order, without those of stopped links: read
        here rather than by a Jinja filter chain in the role, which walked every entry of the plan
        through Ansible's lazy templating twice per task (issue 19: 0.3 s per task at 100 links)."""
        stopped = set(stopped_links or [])
        entries = self.planned_changes(task_vars, task_vars.get("inventory_hostname")).get(phase) or []
        steps = []
        for entry in entries:
            if isinstance(entry, dict) and entry.get("link") not in stopped:
                steps += [step for step in entry.get("args") or [] if isinstance(step, dict)]
        return steps


def fw_json(data):
    """The firewall state for a diff: one line per setting and per rule (a rule is one JSON object),
    so a change record's diff shows each rule added or removed as one line."""
    import json

    lines = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, list) and value:
            lines.append(f"{key}:")
            lines += [f"  - {json.dumps(item, sort_keys=True)}" for item in value]
        else:
            lines.append(f"{key}: {json.dumps(value, sort_keys=True)}")
    return "\n".join(lines) + "\n"
