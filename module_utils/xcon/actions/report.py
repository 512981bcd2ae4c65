"""xcon_report: the final report - planned changes marked applied, verification added, summary."""

from __future__ import annotations

import copy
import os

from xcon import firewall as fw
from xcon import report as xreport
from xcon.action import XconAction
from xcon.specs import REPORT


class ActionModule(XconAction):
    ARGUMENT_SPEC = REPORT

    def xcon_run(self, args, task_vars):
        diagnosis = args["diagnosis"]
        check_mode = bool(task_vars.get("ansible_check_mode"))
        links = copy.deepcopy(diagnosis.get("links", []))
        outcomes = self._change_outcomes(args, task_vars)
        firewall_state = self._firewall_states(args, task_vars)
        verification = (args["verification"] or {}).get("verification", {})
        pending_restart = self._pending_restarts(args, task_vars)
        failures = []
        for link in links:
            for index, change in enumerate(link.get("changes", [])):
                change_id = f"{link['id']}#{index + 1}"
                if check_mode:
                    change["applied"] = False
                elif change["action"] == "operator":
                    change["applied"] = self._operator_done(change, firewall_state)
                else:
                    outcome = outcomes.get(change_id)
                    change["applied"] = bool(outcome and not outcome.get("failed"))
                    if outcome and outcome.get("failed"):
                        change["error"] = outcome.get("msg", "failed")
                        failures.append(f"{change_id} ({change.get('description', change['action'])}): {change['error']}")
            if check_mode:
                link["verification"] = {"state": "not_run", "details": {}}
            elif link["id"] in verification:
                link["verification"] = verification[link["id"]]
            elif link.get("changes"):
                link["verification"] = {"state": "not_run", "details": {"reason": "no verification ran (a change failed first, or the run stopped)"}}
            else:
                link["verification"] = {"state": "not_run", "details": {}}
            hosts = {link["inside"]["host"], link["outside"]["host"]}
            if hosts & pending_restart:
                link["mta_restart"] = "pending"
            if not check_mode:
                if link["verification"]["state"] == "passed":
                    pass  # mail flows: the link ended ok
                elif link.get("changes"):
                    failures.append(f"{link['id']}: verification {link['verification']['state']}")
                elif link.get("status") != "ok":
                    failures.append(f"{link['id']}: status {link.get('status')} and no change applied")
        report = xreport.build_report(
            run_id=args["run_id"], check_mode=check_mode, workaround_requested=diagnosis.get("workaround_requested", "auto"),
            hosts_scanned=sorted({l[s]["host"] for l in links for s in ("inside", "outside")} - {h["host"] for h in diagnosis.get("hosts_failed", [])}) if links else [],
            hosts_failed=diagnosis.get("hosts_failed", []), links=links, tool_version=args["tool_version"],
        )
        paths = xreport.write_report(report, os.path.dirname(args["run_dir"]))
        summary = xreport.render_summary(report)
        ok = check_mode or not failures
        return {"paths": paths, "ok": ok, "failure": "; ".join(failures), "summary_lines": summary.splitlines(), "report": report}

    def _change_outcomes(self, args, task_vars):
        outcomes = {}
        for host in args["exchange_hosts"] + args["firewall_hosts"]:
            for name in args["change_results"]:
                registered = self.host_var(task_vars, name, None, host=host)
                if not isinstance(registered, dict):
                    continue
                for item in registered.get("results", []):
                    change = item.get("item") if isinstance(item, dict) else None
                    if isinstance(change, dict) and change.get("id"):
                        outcomes[change["id"]] = item
        return outcomes

    def _firewall_states(self, args, task_vars):
        states = {}
        for host in args["firewall_hosts"]:
            declared = (self.host_var(task_vars, "xcon_firewall_facts_result", {}, host=host) or {}).get("firewall", {})
            states[host] = fw.facts_with_state(host, declared, os.path.join(args["state_dir"], "firewall", f"{host}.json"))
        return states

    @staticmethod
    def _operator_done(change, states):
        facts = states.get(change["target"])
        steps = change.get("firewall_steps") or []
        if not facts or not steps:
            return False
        pending, _ = fw.pending_steps(facts, steps)
        return not pending

    def _pending_restarts(self, args, task_vars):
        pending = set()
        for host in args["exchange_hosts"]:
            if self.host_var(task_vars, "xcon_restart_pending", False, host=host):
                pending.add(str(self.host_var(task_vars, "xcon_server_name", host=host) or host))
        return pending
