"""The final report of a run stopped by SIGINT or SIGTERM (callback plugin xcon_run_lock).

The report xcon_diagnose wrote says every change is "applied: false"; after an interrupt that is
not true of the changes already made.  This rewrites it from the run's own records, as rollback
reads them: the gates' outcomes (``transaction.json``), the change journal (``journal/<host>.json``,
each connector write recorded before it was sent) and the firewall's confirmed change records.  A
write that was journaled but whose answer the run never saw is counted as applied, with a warning:
it may have landed, and the next run (or rollback) must treat it so.  Verification did not run.
"""

from __future__ import annotations

import os

from xcon import firewall as fw
from xcon import report as xreport
from xcon import state as xstate

OPS = {"modify": "dir_modify", "create": "dir_create"}


def _journaled(run_dir):
    """{(inventory host, connector name lower-cased, op)} of every write the journal records."""
    found = set()
    folder = os.path.join(run_dir, "journal")
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) and not os.path.islink(folder) else []:
        if name.endswith(".json") and not name.startswith("."):
            try:
                entries = xstate.read_json(os.path.join(folder, name), []) or []
            except ValueError:
                continue
            found |= {(name[:-len(".json")], str(e.get("name", "")).lower(), e.get("op")) for e in entries if isinstance(e, dict)}
    return found


def _firewall_done(entry, plan, state_dir):
    steps = entry.get("args") or []
    if not steps or not state_dir:
        return False
    facts = fw.facts_with_state(entry["target"], (plan.get("firewalls") or {}).get(entry["target"], {}),
                                os.path.join(state_dir, "firewall", f"{entry['target']}.json"))
    return not fw.pending_steps(facts, steps)[0]


def applied_changes(run_dir, state_dir=None):
    """{plan entry id: (applied, warning or None)} from the run's records."""
    plan = xstate.read_json(os.path.join(run_dir, "plan.json"), {}) or {}
    outcomes = (xstate.read_json(os.path.join(run_dir, "transaction.json"), {}) or {}).get("outcomes") or {}
    journaled = _journaled(run_dir)
    result = {}
    for entry in plan.get("plan") or []:
        outcome = outcomes.get(entry.get("id"))
        if outcome is not None:
            result[entry["id"]] = (bool(outcome.get("ok")), None if outcome.get("ok") else outcome.get("reason") or "failed")
        elif entry.get("action") == "operator":
            result[entry["id"]] = (_firewall_done(entry, plan, state_dir), None)
        elif (str(entry.get("target")), str((entry.get("args") or {}).get("name") or "").lower(), OPS.get(entry.get("action"))) in journaled:
            result[entry["id"]] = (True, "the write was sent before the run was interrupted and its answer was not seen: "
                                         "it may have landed, so it is counted as applied")
        else:
            result[entry["id"]] = (False, None)
    return result


def final_report(run_dir, signal_name, state_dir=None, rerun_command=""):
    """Rewrite the run's report (run dir and reports/latest) after an interrupt; returns its paths,
    or None when there is nothing to rewrite (no report yet, or a --check run)."""
    report = xstate.read_json(os.path.join(run_dir, "report.json"), {}) or {}
    if not report.get("links") and not report.get("run_id") or report.get("check_mode"):
        return None
    applied = applied_changes(run_dir, state_dir)
    reason = f"the run was interrupted ({signal_name}) before verification"
    for link in report.get("links") or []:
        for index, change in enumerate(link.get("changes") or []):
            done, note = applied.get(f"{link['id']}#{index + 1}", (False, None))
            change["applied"] = done
            if note and done:
                change["warning"] = note
            elif note:
                change["error"] = note
        link["verification"] = {"state": "not_run", "details": {"reason": reason} if link.get("changes") else {}}
    rebuilt = xreport.build_report(
        run_id=report["run_id"], check_mode=False, workaround_requested=report.get("workaround_requested", "auto"),
        hosts_scanned=(report.get("coverage") or {}).get("hosts_scanned"), hosts_failed=(report.get("coverage") or {}).get("hosts_failed"),
        links=report.get("links") or [], tool_version=report.get("tool_version", ""),
        directories=(report.get("coverage") or {}).get("directories"))
    rebuilt["interrupted"] = {"signal": signal_name, "at": xstate.now_utc(),
                              "note": "written on the interrupt from the run's records (transaction, journal, firewall records)"}
    if rerun_command:
        rebuilt["rerun_command"] = rerun_command
    return xreport.write_report(rebuilt, os.path.dirname(run_dir))
