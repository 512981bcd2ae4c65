"""xcon_report: the final report - planned changes marked applied, verification added, summary."""

from __future__ import annotations

import os

from xcon import diagnosis_file as xdiagnosis_file
from xcon import firewall as fw
from xcon import open_transactions as otx
from xcon import report as xreport
from xcon import report_timeline as xtimeline
from xcon import state as xstate
from xcon import transaction as txn
from xcon.action import XconAction
from xcon.audit_results import own_result
from xcon.specs import REPORT


class ActionModule(XconAction):
    ARGUMENT_SPEC = REPORT
    REQUIRED_ONE_OF = [["diagnosis", "diagnosis_file"]]

    def xcon_run(self, args, task_vars):
        # the whole diagnosis from its file (xcon.diagnosis_file); `links` is this task's own copy
        diagnosis = xdiagnosis_file.from_options(args["diagnosis_file"], args["diagnosis"])
        check_mode = bool(task_vars.get("ansible_check_mode"))
        links = diagnosis.get("links", [])
        # under --check no change ran and no MTA restarted: nothing to look up on every host
        outcomes = {} if check_mode else self._change_outcomes(args, task_vars)
        firewall_state = self._firewall_states(args, task_vars)
        verification = (args["verification"] or {}).get("verification", {})
        pending_restart = self._pending_restarts(args, task_vars)
        restarts = {} if check_mode else self._restarts(args, task_vars)
        transaction = (args["transaction"] or {}).get("links") or {}
        failures = []
        try:
            records = otx.load(args["state_dir"])
        except xstate.StateError as exc:  # the report is still written, and the run fails saying why
            records, untrusted = {}, [f"the record of open transactions cannot be trusted ({exc}); nothing in it was closed"]
        else:
            untrusted = []
        for link in links:
            stopped = self._transaction(link, transaction.get(link["id"]), check_mode)
            if stopped:
                failures.append(txn.stop_line(link["id"], transaction[link["id"]]))
            for index, change in enumerate(link.get("changes", [])):
                change_id = f"{link['id']}#{index + 1}"
                if check_mode:
                    change["applied"] = False
                elif change["action"] == "operator":
                    change["applied"] = self._operator_done(change, firewall_state)
                else:
                    outcome = outcomes.get(change_id)
                    change["applied"] = bool(outcome and not outcome.get("failed"))
                    waited = ((outcome or {}).get("directory") or {}).get("replication")
                    if waited and change.get("directory"):
                        change["directory"]["replication_wait"] = waited   # what the write then waited
                    if outcome and outcome.get("failed"):
                        change["error"] = outcome.get("msg", "failed")
                        failures.append(f"{change_id} ({change.get('description', change['action'])}): {change['error']}")
            if check_mode:
                link["verification"] = {"state": "not_run", "details": {}}
            elif stopped:
                link["verification"] = {"state": "not_run", "details": {"reason": f"the link stopped at a change step: {stopped['reason']}"}}
            elif link["id"] in verification:
                link["verification"] = dict(verification[link["id"]])
                if link["verification"]["state"] == "pending":  # not observed: the MTA restart is pending
                    link["verification"]["state"] = "not_run"
            elif link.get("changes"):
                reason = "no verification ran (a change failed first, or the run stopped)"
                if (args["verification"] or {}).get("failed"):
                    reason = f"the verification could not run: {args['verification'].get('msg', 'failed')}"
                link["verification"] = {"state": "not_run", "details": {"reason": reason}}
            else:
                link["verification"] = {"state": "not_run", "details": {}}
            link["timeline"] = self._timeline(link, args, diagnosis, check_mode)
            hosts = {link["inside"]["host"], link["outside"]["host"]}
            if hosts & pending_restart:
                link["mta_restart"] = "pending"
            if not check_mode and hosts & set(restarts):
                link["mta_restarts"] = {host: restarts[host] for host in sorted(hosts & set(restarts))}
            if not check_mode:
                failures += self._settle_transaction(link, records, pending_restart, args)
                if link["verification"]["state"] == "passed" or stopped:
                    pass  # mail flows: the link ended ok (a stopped link's failure is said above)
                elif link.get("changes"):
                    failures.append(f"{link['id']}: verification {link['verification']['state']}")
                elif link.get("status") != "ok":
                    failures.append(f"{link['id']}: status {link.get('status')} and no change applied")
        # The hosts read are the diagnosis's (every server read, in a link or not), never only those
        # that ended up in a link: a server whose peer is missing from the inventory was still read.
        hosts_failed = diagnosis.get("hosts_failed", [])
        hosts_scanned = diagnosis.get("hosts_scanned")
        if hosts_scanned is None:
            hosts_scanned = sorted({l[s]["host"] for l in links for s in ("inside", "outside")} - {h["host"] for h in hosts_failed})
        report = xreport.build_report(
            run_id=args["run_id"], check_mode=check_mode, workaround_requested=diagnosis.get("workaround_requested", "auto"),
            hosts_scanned=hosts_scanned, hosts_failed=hosts_failed, links=links, tool_version=args["tool_version"],
            directories=diagnosis.get("directories"), masked=False,
        )
        if not check_mode and not untrusted and (records or os.path.exists(otx.path(args["state_dir"]))):
            otx.save(args["state_dir"], records)
        if not check_mode and any(l.get("transaction", {}).get("state") == "stopped" or l.get("transaction", {}).get("open") for l in links):
            report["rerun_command"] = args["rerun_command"]
            failures.append(f"Remove the cause, then re-run: {args['rerun_command']}")
        # masked once, after its last change, for the files and the summary (each masked it again)
        report = xreport.mask_report(report)
        paths = xreport.write_report(report, os.path.dirname(args["run_dir"]), masked=True)
        summary = xreport.render_summary(report, masked=True)
        # What was not read is a failure in check mode too: an audit that could not see a host, or
        # found no link at all, has not shown that the site is healthy.  Under --check the refusals
        # a real run would meet (preflight) are the check's own failure: check mode predicts them.
        problems = untrusted + coverage_problems(hosts_scanned, hosts_failed, links, diagnosis.get("unlinked") or [])
        # An open transaction whose link this run did not find (a server left out of the inventory, or
        # not read): nothing finished or undid it, and it must not pass unsaid.
        problems += [f"{link_id}: the open transaction of run {record.get('opened_by')} was neither finished nor rolled back: "
                     "this run did not find that link (are both its servers in the inventory and readable?)"
                     for link_id, record in sorted(records.items()) if link_id not in {l["id"] for l in links}]
        if check_mode:
            problems += [f"a real run would refuse before any change: {e}" for e in diagnosis.get("preflight_errors") or []]
            failures = problems
        else:
            failures = problems + failures
        ok = not failures
        # the report itself is in report.json (paths): not returned, Ansible would copy it again
        return {"paths": paths, "ok": ok, "failure": "; ".join(failures), "summary_lines": summary.splitlines(),
                "stats": xreport.run_stats(report, paths)}

    @staticmethod
    def _timeline(link, args, diagnosis, check_mode):
        """The audit's timeline with the verification's reads and (not under --check) the changes
        this run applied and the MTA restarts it made, from the run's journal."""
        polls = ((args["verification"] or {}).get("timeline") or {}).get(link["id"])
        if check_mode:
            return xtimeline.complete(link, polls)
        journal = args["transaction"] or {}
        outcomes = journal.get("outcomes") or {}
        applied = []
        for index, change in enumerate(link.get("changes", [])):
            outcome = outcomes.get(f"{link['id']}#{index + 1}") or {}
            if change.get("applied") and outcome.get("at"):
                applied.append({"at": outcome["at"], "step": change.get("step", index + 1), "target": change["target"],
                                "kind": change.get("kind") or "connector"})
        servers = diagnosis.get("servers") or {}
        restarts = {}
        for name in (link["inside"]["host"], link["outside"]["host"]):
            done = (journal.get("restarts") or {}).get((servers.get(name) or {}).get("inventory_host") or name) or {}
            if done.get("ok") and done.get("at"):
                restarts[name] = done["at"]
        return xtimeline.complete(link, polls, xtimeline.place_changes(link, applied, restarts, polls, diagnosis.get("audit_at")))

    @staticmethod
    def _transaction(link, state, check_mode):
        """Put the gate's view of the link into the report; the stop (dict) or None."""
        if check_mode or not link.get("changes"):
            link["transaction"] = {"state": "unchanged" if not check_mode else "not_run", "stopped_at": None}
            return None
        if not state:
            link["transaction"] = {"state": "not_run", "stopped_at": None}
            return None
        link["transaction"] = {k: state[k] for k in ("state", "steps_total", "steps_done", "stopped_at", "not_run")}
        stopped = state.get("stopped_at") if state.get("state") == "stopped" else None
        if stopped:
            for index, change in enumerate(link.get("changes", [])):
                if f"{link['id']}#{index + 1}" in state.get("not_run", []):
                    change.setdefault("not_run_reason", f"the link stopped at step {stopped['step']} on {stopped['host']}")
        return stopped

    def _change_outcomes(self, args, task_vars):
        outcomes = {}
        for host in args["exchange_hosts"] + args["firewall_hosts"]:
            for name in args["change_results"]:
                # a fleet task's result: read once; this host's own part of it
                registered = own_result(self.fleet_var(task_vars, name, host), host)
                if not isinstance(registered, dict):
                    continue
                for item in registered.get("results", []):
                    change = item.get("item") if isinstance(item, dict) else None
                    if isinstance(change, dict) and change.get("id"):
                        outcomes[change["id"]] = item
        # The run's journal (xcon_link_gate) keeps every phase's outcome; a host's registered
        # result only holds its last phase's.
        for change_id, outcome in ((args["transaction"] or {}).get("outcomes") or {}).items():
            outcomes[change_id] = dict(outcomes.get(change_id) or {}, failed=not outcome.get("ok"), msg=outcome.get("reason") or "failed")
        return outcomes

    def _firewall_states(self, args, task_vars):
        states = {}
        for host in args["firewall_hosts"]:
            declared = (self._registered(task_vars, "xcon_firewall_facts_result", host) or {}).get("firewall", {})
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

    def _restarts(self, args, task_vars):
        """What each server's MTA restart did (xcon_mta_restart_result.service), by server name."""
        found = {}
        for host in args["exchange_hosts"]:
            registered = own_result(self.fleet_var(task_vars, "xcon_mta_restart_result", host), host)
            service = registered.get("service") if isinstance(registered, dict) else None
            if isinstance(service, dict) and "dependents" in service:
                name = str(self.host_var(task_vars, "xcon_server_name", host=host) or host)
                found[name] = {"service": service.get("name"), "restarted": bool(service.get("restarted")),
                               **{k: list(service.get(k) or []) for k in ("dependents", "started", "timed_out", "not_running")}}
        return found

    def _pending_restarts(self, args, task_vars):
        """Servers whose MTA restart is pending: a change made on them is not active yet (the
        marker is removed only by a restart that was done)."""
        pending = set()
        for host in args["exchange_hosts"]:
            # the fact stays set after a fleet restart (one task cannot set another host's facts):
            # a restart that was done clears it, as xcon_mta_service clears a single host's
            restart = own_result(self.fleet_var(task_vars, "xcon_mta_restart_result", host), host)
            service = restart.get("service") if isinstance(restart, dict) else None
            restarted = isinstance(service, dict) and bool(service.get("restarted", True))
            fact = self.module_fact(task_vars, "xcon_restart_pending", host, False) and not restarted
            if fact or xstate.restart_pending(xstate.restart_marker(args["state_dir"], host)):
                pending.add(str(self.host_var(task_vars, "xcon_server_name", host=host) or host))
        return pending

    @staticmethod
    def _settle_transaction(link, records, pending_restart, args):
        """Close the link's open transaction when it is proven (finished: every step done, no MTA
        restart pending, verification passed - its servers' evidence before the verification then
        no longer counts; rolled back: every undo done), else keep it open and say why; returns the
        run's failures for the link."""
        record = records.get(link["id"])
        if record is None:
            return []
        txn = link.setdefault("transaction", {"state": "not_run", "stopped_at": None})
        undos = [c for c in link.get("changes") or [] if c.get("undoes")]
        if undos:
            if all(c.get("applied") for c in undos) and txn.get("state") == "complete":
                del records[link["id"]]
                txn["rolled_back"] = True
                return [f"{link['id']}: the open transaction of run {record['opened_by']} was rolled back; the link is as it was "
                        "before it, not fixed: run again to diagnose it afresh"]
            txn["open"] = otx.summary(record)
            return [f"{link['id']}: the rollback of the open transaction did not complete: {txn['open']}"]
        hosts = sorted({link[side]["host"] for side in ("inside", "outside")} & pending_restart)
        record["restart_pending"] = hosts
        record["last_run"] = args["run_id"]
        if link["verification"].get("state") == "passed" and not record["left"] and not hosts:
            del records[link["id"]]
            txn["closed"] = True
            since = (link["verification"].get("details") or {}).get("since") or {}
            # Evidence older than the verified change describes a configuration that no longer runs.
            xstate.record_baseline(os.path.join(args["state_dir"], xstate.BASELINE_FILE), {h: t for h, t in since.items() if t})
            return []
        txn["open"] = otx.summary(record)
        if hosts:
            link["verification"] = {"state": "not_run", "details": {
                "reason": f"MTA restart pending on {', '.join(hosts)}: the changes are not active, so nothing can be verified yet"}}
            return [f"{link['id']}: pending - {txn['open']}. The link is not fixed until the MTA restarts and the "
                    "verification passes (xcon_allow_mta_restart=true)"]
        return [f"{link['id']}: transaction still open - {txn['open']}"]


def coverage_problems(hosts_scanned, hosts_failed, links, unlinked):
    """Why the audit's own coverage makes the run a failure (empty when every host was read and a
    link was found)."""
    problems = []
    if hosts_failed:
        names = ", ".join(f"{h.get('host')} ({h.get('code') or 'XCON-UNREACHABLE'})" for h in hosts_failed)
        problems.append(f"{len(hosts_failed)} Exchange host(s) could not be read: {names}; their links are unknown, "
                        "nothing was changed on them. Fix the connection or credentials (see the host's message above) and run again")
    if not hosts_scanned and not hosts_failed:
        problems.append("no Exchange host to read: put the servers in the inventory group xcon_exchange")
    elif not hosts_scanned:
        problems.append("no Exchange host could be read at all")
    elif not links:
        why = f" (connectors that point at servers not in the inventory: {'; '.join(unlinked)})" if unlinked else ""
        problems.append(f"no X.400 link was found although {len(hosts_scanned)} host(s) were read ({', '.join(hosts_scanned)}){why}: "
                        "add each server's peer to the inventory group xcon_exchange")
    return problems
