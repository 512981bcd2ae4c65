"""xcon_link_gate: before each phase of the changes, stop the links whose earlier steps failed.

Runs once per change play, on the controller.  It reads the change results every host registered
so far (xcon_backup_result, xcon_change_results, xcon_mta_restart_result, the firewall's confirmed
state), adds them to the run's journal (``<run_dir>/transaction.json``, because a host's registered
result is replaced by its next phase's), and returns which links stopped and where (xcon.transaction).
Check mode: nothing ran, so nothing stopped; nothing is written.
"""

from __future__ import annotations

import json
import os
import shlex

from xcon import firewall as fw
from xcon import open_transactions as otx
from xcon import report_timeline as xtimeline
from xcon import state as xstate
from xcon import transaction as txn
from xcon.audit_results import failure_reason, host_outcome, own_result
from xcon.action import XconAction
from xcon.specs import LINK_GATE

JOURNAL = "transaction.json"


class ActionModule(XconAction):
    ARGUMENT_SPEC = LINK_GATE

    def xcon_run(self, args, task_vars):
        if self._task.check_mode or task_vars.get("ansible_check_mode"):
            return {"phase": args["phase"], "links": {}, "stopped": [], "restart_withheld": {}, "lines": [], "outcomes": {}, "restarts": {}, "rerun_command": ""}
        plan = self._plan(args["run_dir"])
        journal_path = os.path.join(args["run_dir"], JOURNAL)
        journal = self._load(journal_path)
        for key in ("outcomes", "backups", "restarts", "host_errors"):
            journal.setdefault(key, {})
        gate = txn.phase_index(args["phase"])
        # Read only the hosts of the plays that ran since the last gate (reading a host's variables
        # costs about a millisecond each, and a fleet has hundreds).
        since = journal.get("read_through", 0)
        exchange = set(args["exchange_hosts"])
        hosts = set()
        for index in range(since, gate):
            phase = txn.PHASES[index]
            if phase in ("backup", "mta_restart"):
                hosts |= {e["target"] for e in plan} | set(args["extra_hosts"])
            else:
                hosts |= {e["target"] for e in plan if e.get("phase") == phase}
        now = xtimeline.controller_now()
        for host in sorted(hosts & exchange):
            self._read_exchange_host(task_vars, host, journal, now)
        journal["read_through"] = max(since, gate)
        for entry in plan:
            if entry.get("kind") == "firewall" and txn.phase_index(entry["phase"]) < gate and entry["id"] not in journal["outcomes"]:
                journal["outcomes"][entry["id"]] = dict(self._operator_outcome(args, task_vars, entry), at=now)
        states = txn.link_states(plan, args["phase"], journal["outcomes"], journal["backups"], journal["restarts"], journal["host_errors"])
        # Each stop is said once, at the gate that first sees it (the final report repeats them all).
        announced = set(journal.get("announced", []))
        journal.update(phase=args["phase"], links=states["links"], announced=sorted(announced | set(states["stopped"])))
        xstate.write_json_atomic(journal_path, journal, checksum=True)  # rollback trusts it only with its checksum
        note_open_transactions(args, plan, journal["outcomes"], states)
        rerun = args["rerun_command"] or rerun_command(task_vars)
        lines = [txn.stop_line(link, states["links"][link], rerun) for link in states["stopped"] if link not in announced]
        # What every host of the play gets registered: the change roles need only the stopped
        # links; the whole view (every link, every outcome) goes to the report, after the last phase.
        final = args["phase"] == "final"
        links = states["links"] if final else {link: states["links"][link] for link in states["stopped"]}
        return dict(states, links=links, phase=args["phase"], journal=journal_path, lines=lines,
                    outcomes=journal["outcomes"] if final else {}, restarts=journal["restarts"] if final else {}, rerun_command=rerun)

    @staticmethod
    def _plan(run_dir):
        path = os.path.join(run_dir, "plan.json")
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("plan", [])

    @staticmethod
    def _load(path):
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def _read_exchange_host(self, task_vars, host, journal, now):
        """The host's registered results into the journal; ``at`` (the controller's time when an
        outcome was first seen: the report's timeline places the change there) is kept from the
        gate that first saw it."""
        def record(kind, key, outcome):
            seen = journal[kind].get(key) or {}
            journal[kind][key] = dict(outcome, at=seen["at"] if seen.get("at") and seen.get("ok") == outcome["ok"] else now)

        backup = self.fleet_var(task_vars, "xcon_backup_result", host)
        if isinstance(backup, dict) and not backup.get("skipped"):
            record("backups", host, host_outcome(backup, host))  # the play's one fleet task (role xcon_backup)
        # the play's one fleet task per phase (role xcon_change): this host's own loop of changes
        changes = own_result(self.fleet_var(task_vars, "xcon_change_results", host), host)
        if isinstance(changes, dict):
            items = changes.get("results")
            if items is None and changes.get("failed"):
                journal["host_errors"][host] = failure_reason(changes)
            for item in items or []:
                entry = item.get("item") if isinstance(item, dict) else None
                if isinstance(entry, dict) and entry.get("id") and not item.get("skipped"):
                    record("outcomes", entry["id"], host_outcome(item, host))
        restart = self.fleet_var(task_vars, "xcon_mta_restart_result", host)
        # the play's one fleet task (role xcon_mta_restart): a server it did not restart (nothing
        # pending, withheld, not allowed) has no outcome there
        fleet = restart.get("hosts") if isinstance(restart, dict) else None
        if isinstance(restart, dict) and not restart.get("skipped") and (not isinstance(fleet, dict) or host in fleet):
            record("restarts", host, host_outcome(restart, host))

    def _operator_outcome(self, args, task_vars, entry):
        """An operator change is done when the firewall's confirmed state holds every step."""
        host = entry["target"]
        try:
            pending, _ = fw.pending_steps(self._firewall_now(args, task_vars, host), entry.get("args") or [])
        except fw.FirewallError as exc:
            return {"ok": False, "reason": f"firewall {host}: {exc}"}
        if not pending:
            return {"ok": True, "reason": ""}
        for name in ("xcon_firewall_tunnel_change", "xcon_firewall_tunnel_confirmation"):
            registered = self.host_var(task_vars, name, None, host=host)
            if isinstance(registered, dict) and registered.get("failed"):
                return {"ok": False, "reason": failure_reason(registered)}
        return {"ok": False, "reason": f"the firewall change on {host} was not carried out (no operator confirmation)"}


    def _firewall_now(self, args, task_vars, host):
        """The firewall's declared facts with its confirmed state, once per firewall and gate: a
        firewall has an entry per link, and both the facts (templated) and the state file hold every
        link's rules, so reading them per entry grew with the square of the fleet (13 s for each of
        two gates of a 300-link fix).  A FirewallError is raised again for each entry."""
        cache = self.__dict__.setdefault("_xcon_firewalls", {})
        if host not in cache:
            declared = (self.host_var(task_vars, "xcon_firewall_facts_result", {}, host=host) or {}).get("firewall") or {}
            try:
                cache[host] = fw.facts_with_state(host, declared, os.path.join(args["state_dir"], "firewall", f"{host}.json"))
            except fw.FirewallError as exc:
                cache[host] = exc
        if isinstance(cache[host], fw.FirewallError):
            raise cache[host]
        return cache[host]


# The phases a gate lets start (the play after the gate before firewall_tunnel_close also closes
# with transparency off).
STARTS = {"firewall_tunnel_close": ("firewall_tunnel_close", "transparency_off")}


def note_open_transactions(args, plan, outcomes, states):
    """Keep each link's open transaction (xcon.open_transactions) up to date before the phase runs:
    the steps done so far, and the steps about to start (a step that is sent and never answered
    may have been applied: finishing runs it again, rollback undoes it)."""
    records = otx.load(args["state_dir"])
    run_id = os.path.basename(os.path.normpath(args["run_dir"]))
    starting = STARTS.get(args["phase"], (args["phase"],))
    touched = False
    for link_id, record in records.items():
        entries = [e for e in plan if e["link"] == link_id]
        if not entries:
            continue
        ids = {e["id"]: e.get("undoes") for e in entries}
        done = [i for i in ids if (outcomes.get(i) or {}).get("ok")]
        started = [e["id"] for e in entries if e.get("phase") in starting and link_id not in states["stopped"]]
        if any(ids.values()):
            # a rollback: its undo steps are the plan; the record counts them under "undone"
            record["undone"] = sorted(set(record.get("undone", [])) | {ids[i] for i in done})
            record["runs"] = record["runs"] + ([run_id] if run_id not in record["runs"] else [])
        else:
            otx.note_progress(record, run_id, done, started)
        touched = True
    if touched:
        otx.save(args["state_dir"], records)


def rerun_command(task_vars):
    """The same run again: inventory, requested workaround, acknowledgement, report and state dirs."""
    words = ["ansible-playbook"]
    for source in task_vars.get("ansible_inventory_sources") or []:
        words += ["-i", shlex.quote(str(source))]
    words += ["fix-xcon.yml", "-e", f"xcon_workaround={shlex.quote(str(task_vars.get('xcon_workaround', 'auto')))}"]
    if str(task_vars.get("xcon_transparency_off_acknowledged", "")).lower() in ("true", "yes", "1"):
        words += ["-e", "xcon_transparency_off_acknowledged=true"]
    if str(task_vars.get("xcon_open_transactions", "")) == otx.ROLLBACK:
        words += ["-e", f"xcon_open_transactions={otx.ROLLBACK}"]
    if str(task_vars.get("xcon_allow_mta_restart", "true")).lower() in ("false", "no", "off", "0"):
        # the transaction completes only once its MTA restarts are done and verified
        words += ["-e", "xcon_allow_mta_restart=true"]
    for name in ("xcon_report_dir", "xcon_state_dir"):
        if task_vars.get(name):
            words += ["-e", f"{name}={shlex.quote(str(task_vars[name]))}"]
    return " ".join(words)


