"""xcon_diagnose: links, findings, workaround and plan from what the audit read; writes the report.

No connection: it reads `xcon_audit_result` of every Exchange host and `xcon_firewall_facts_result`
of every firewall from hostvars (or, offline, the raw answers a saved run kept).
"""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail

from xcon import diagnose as xdiag
from xcon import diagnosis_file as xdiagnosis_file
from xcon.diagnose import links as xlinks
from xcon import directory_route
from xcon import errors as xerr
from xcon import evidence as xev
from xcon.audit_results import load_result_file, own_result, server_entry
from xcon import firewall as fw
from xcon import open_transactions as otx
from xcon import plan as xplan
from xcon import profile as xprofile
from xcon import report as xreport
from xcon.report_json import copied
from xcon import report_timeline as xtimeline
from xcon import state as xstate
from xcon import topology as xtopology
from xcon.action import XconAction
from xcon.actions.report import coverage_problems
from xcon.specs import DIAGNOSE

# Which role carries out a firewall change, by its first step (remediate.yml runs them in this order).
FIREWALL_PHASES = {"add_routed_path": "firewall_tunnel_open", "remove_passer": "firewall_tunnel_close", "add_passer": "firewall_tunnel_close",
                   "remove_routed_path": "firewall_tunnel_close", "set_transparency": "transparency_off"}


class ActionModule(XconAction):
    ARGUMENT_SPEC = DIAGNOSE

    def xcon_run(self, args, task_vars):
        # The controller's clock near the audit's reads: it puts the run's changes on the servers'
        # clocks in the report's timeline (xcon.report_timeline.place_changes).
        audit_at = xtimeline.controller_now()
        servers, firewalls = self._inputs(args, task_vars)
        check_mode = bool(self._task.check_mode) or bool(task_vars.get("ansible_check_mode"))
        return diagnose_and_report(servers, firewalls, args, check_mode, self.host_var(task_vars, "xcon_tool_version", "0.1.0"),
                                   routes=self.exchange_servers(task_vars), audit_at=audit_at, diff=bool(self._task.diff))

    def _inputs(self, args, task_vars):
        servers, firewalls = {}, []
        saved = args.get("saved_run_dir")
        if saved:
            check_saved_run(saved)
        for host in args["exchange_hosts"]:
            name = str(self.host_var(task_vars, "xcon_server_name", host=host) or host)
            if saved:
                audit = load_saved(saved, host)
            else:
                # the fleet read's result, registered on every host of its play, is read once
                # (fleet_var), not templated and copied again for each of its hosts
                audit = load_result_file(own_result(self.fleet_var(task_vars, "xcon_audit_result", host) or {}, host))
            servers[name] = server_entry(name, host, audit, lambda var, default=None, h=host: self.host_var(task_vars, var, default, host=h))
        if saved:
            # offline: the firewall as that run saw it (its plan.json), not as it is today
            return servers, saved_firewalls(saved)
        for host in args["firewall_hosts"]:
            result = self.host_var(task_vars, "xcon_firewall_facts_result", {}, host=host) or {}
            facts = result.get("firewall")
            if not facts:  # its read task failed or never ran: the firewall is unknown, never left out
                facts = {"name": host, "error": result.get("msg") or "its facts were not read (the host failed before its read)"}
            firewalls.append(facts)
        return servers, firewalls


def diagnose_and_report(servers, firewalls, args, check_mode, tool_version, routes=None, audit_at=None, diff=True):
    """Everything xcon_diagnose does after it has its inputs (tests/bench/profile_diagnose.py times
    and profiles exactly this): diagnose, plan, write the report, plan.json and the whole diagnosis
    (xcon.diagnosis_file); returns the task's small registered result.
    `routes`: the inventory's Exchange servers as xcon.directory_route reads them; `audit_at`: the
    controller's clock at the audit's reads; `diff`: --diff asked for the plan's before/after."""
    options = {
        "queue_threshold": args["queue_threshold"],
        "reverse_connector_name": args["reverse_connector_name"] or None,
        "address_type": args["address_type"],
        "firewall_changes_possible": args["firewall_changes_possible"],
        "transparency_off_acknowledged": args["transparency_off_acknowledged"],
    }
    untrusted = None
    try:
        # Offline analysis reads a saved run: what is open now does not change what it saw.
        records = {} if args.get("saved_run_dir") else otx.load(args.get("state_dir"))
    except xstate.StateError as exc:
        records, untrusted = {}, (f"The record of open transactions cannot be trusted ({exc}). It says which "
                                  "links an earlier run left half-changed; restore it (or, once every link was checked by hand, "
                                  "remove it together with its .sha256) and run again.")
    # a stopped fix that playbooks/rollback.yml undid afterwards: nothing left to finish
    if otx.drop_rolled_back(records, os.path.dirname(args["run_dir"])) and not check_mode:
        otx.save(args["state_dir"], records)
    links, plan, preflight = analyse(servers, firewalls, args["workaround"], options, records, args.get("open_transactions") or otx.FINISH)
    if untrusted:
        # every link may have a transaction open: none is ok, nothing is planned, the run refuses
        plan, preflight = [], preflight + [untrusted]
        for link in links:
            otx.mark_untrusted(link, untrusted)
    if not check_mode and not preflight and args["workaround"] != "none" and args.get("state_dir"):
        open_new(records, links, plan, args)
    targets = {c["target"] for c in plan}
    if args.get("state_dir"):
        # A server whose MTA restart an interrupted run left pending takes part again.
        for host in args["exchange_hosts"]:
            if xstate.restart_pending(xstate.restart_marker(args["state_dir"], host)):
                targets.add(host)
    targets = sorted(targets)
    planned = planned_by_target(plan, targets)
    if check_mode and not args.get("preview_on_servers", True):
        # Under --check only the firewalls' change plays run (their records are rendered): the
        # Exchange servers' entries would be registered and copied by Ansible for nothing.
        planned = {host: entry for host, entry in planned.items() if host in set(args["firewall_hosts"])}
    # Each Exchange target's MTA service, from its version's profile (MSExchangeMTA on 5.5): the
    # restart role names it to the operator when it restarts the service or leaves it pending.
    versions = {d["inventory_host"]: d["exchange_version"] for d in servers.values()}
    for host, entry in planned.items():
        if host in versions:
            entry["mta_service"] = xprofile.shared_profile(versions[host])["service"]
    groups = target_groups(planned)
    directories = {s: d.get("directory") for s, d in servers.items() if d.get("directory")}
    directory_route.annotate_changes(links, plan, routes or {}, args["run_id"])
    lines = [link_line(link) for link in links] or ["No X.400 link found between the servers of the inventory."]
    report = xreport.build_report(
        run_id=args["run_id"], check_mode=check_mode,
        workaround_requested=args["workaround"],
        hosts_scanned=sorted(s for s, d in servers.items() if not d.get("error")),
        hosts_failed=[{"host": s, "reason": d["error"]["reason"], "code": d["error"]["code"]} for s, d in sorted(servers.items()) if d.get("error")],
        links=links, tool_version=tool_version, directories=directories, masked=False,
    )
    if args.get("saved_run_dir"):
        # offline analysis: names the run it analysed, and leaves reports/latest to real runs
        report["analysed_run_id"] = os.path.basename(os.path.normpath(args["saved_run_dir"]))
    report = xreport.mask_report(report)   # once, after its last change
    # Under --check with the final report to come, its HTML page is written once, by the final report.
    paths = xreport.write_report(report, os.path.dirname(args["run_dir"]), latest=not args.get("saved_run_dir"),
                                 html=not (check_mode and args.get("final_report")), masked=True)
    # Rollback trusts the plan only with its checksum; check_mode tells it a --check run changed nothing,
    # journal that the run's connector writes are journaled (xcon.state) - older runs' were not.
    xstate.write_json_atomic(os.path.join(args["run_dir"], "plan.json"), {"run_id": args["run_id"], "check_mode": check_mode, "journal": True,
                             "plan": plan, "firewalls": {f["name"]: f for f in firewalls}}, checksum=True)
    result, unlinked = {}, unlinked_connectors(servers, links)
    if check_mode:
        # --check --diff: what would change, from the audit's read, one entry per planned change
        # (the change plays do not run on the Exchange servers under --check).
        # Firewall records are not diffed here: their own role runs under --check and shows
        # each record's diff once (issue 13: each firewall change shown once).
        # Only under --diff, as a module computes its diff (at 100 links 50 KB that Ansible would
        # register and copy for nothing).
        if diff:
            result["diff"] = [xplan.plan_diff(entry) for entry in plan if entry.get("action") != "operator"]
        result["changed"] = bool(plan)  # under --check, changed = would change
    # the whole diagnosis goes to a file the later tasks read; the registered result stays small
    return xdiagnosis_file.write(args["run_dir"], dict(
        result, audit_at=audit_at, workaround_requested=args["workaround"], links=links, plan=plan, targets=targets, planned=planned, target_groups=groups,
            mta_services={host: entry["mta_service"] for host, entry in planned.items() if entry.get("mta_service")}, preflight_errors=preflight, lines=lines,
            report_paths=paths, servers={k: {kk: v[kk] for kk in ("name", "inventory_host", "address", "fqdn")} for k, v in servers.items()},
            hosts_failed=report["coverage"]["hosts_failed"], hosts_scanned=report["coverage"]["hosts_scanned"], directories=directories,
            unreadable_hosts=dict({d["inventory_host"]: f"{d['error'].get('code')}: {d['error'].get('reason')}" for d in servers.values() if d.get("error")},
                                  **{f["name"]: f"{xdiag.FIREWALL_UNKNOWN}: {f['error']}" for f in firewalls if f.get("error")}),
            unlinked=unlinked, coverage_problems=coverage_problems(  # a failed audit as the report says (analyze.yml fails on it)
                report["coverage"]["hosts_scanned"], report["coverage"]["hosts_failed"], links, unlinked)))


def check_saved_run(run_dir):
    """Refuse to analyse a run that is not there (a wrong id must not read as a healthy site)."""
    run_id = os.path.basename(os.path.normpath(run_dir))
    if not os.path.isdir(os.path.join(run_dir, "raw")):
        root = os.path.dirname(os.path.normpath(run_dir))
        runs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, "raw"))) if os.path.isdir(root) else []
        known = f"; saved runs: {', '.join(runs[-5:])}" if runs else "; no run has been saved there yet"
        raise AnsibleActionFail(f"No saved run {run_id} in {root} ({run_dir}/raw does not exist){known}. "
                                "Give the id of a run that read the servers: -e xcon_saved_run_id=RUN_ID.")


def saved_firewalls(run_dir):
    """The firewall facts a saved run diagnosed with (its plan.json)."""
    path = os.path.join(run_dir, "plan.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return list((json.load(handle).get("firewalls") or {}).values())
    except (OSError, ValueError) as exc:
        raise AnsibleActionFail(f"The saved run {os.path.basename(os.path.normpath(run_dir))} has no readable firewall facts "
                                f"({path}: {exc}); it cannot be reproduced offline.") from exc


def unlinked_connectors(servers, links):
    """Connectors of the servers read that are in no link, because the server they point at is not
    in the inventory: ``["EXIN: TO-OUTSIDE -> EXOUT", ...]`` (the peer is missing)."""
    linked = {(xdiag.norm(link[side]["host"]), xdiag.norm(link[side].get(key)))
              for link in links for side in ("inside", "outside") for key in ("connector", "reverse_connector")}
    known = {xdiag.norm(name) for name in servers} | {xdiag.norm(d.get("inventory_host")) for d in servers.values()}
    found = []
    for name, server in sorted(servers.items()):
        for connector in server.get("connectors") or []:
            peer = xdiag.norm(connector.get("remote_mta"))
            if peer and peer not in known and (xdiag.norm(name), xdiag.norm(connector.get("name"))) not in linked:
                found.append(f"{name}: {connector.get('name')} -> {connector.get('remote_mta')}")
    return found


def load_saved(run_dir, host):
    """An audit result rebuilt offline from a saved run's raw answers (no server contacted)."""
    from xcon import gather

    path = os.path.join(run_dir, "raw", f"{host}.json")
    if not os.path.exists(path):
        return {"xcon_error": {"code": xerr.UNREACHABLE, "reason": f"no saved answers for {host} in {run_dir}"}}
    with open(path, encoding="utf-8") as handle:
        saved = json.load(handle)
    profile = gather.get_profile(saved.get("exchange_version", "5.5"))
    results = {k: gather.loaded_result(k, v) for k, v in saved["results"].items()}
    wrong = gather.directory_problem(results.get("directory"), saved.get("organization"), saved.get("ldap_port"), saved["server"])
    if wrong:
        return {"xcon_error": {"code": gather.WRONG_DIRECTORY, "reason": wrong}}
    audit = {"connectors": gather.decode_connectors(results["connectors"], saved["server"], profile),
             "directory": saved.get("directory"),
             "mta_port": gather.mta_port(results.get("mta_port")),
             "mta_port_error": gather.mta_port_error(results.get("mta_port"))}
    if "events" in results:
        audit["evidence"] = gather.decode_evidence(results, saved["server"], None)
    if any(gather.rights_attribute(profile) in e.get("attributes", {}) for e in results["connectors"].data.get("entries", [])):
        audit["write_access"] = gather.write_access(results["connectors"], profile)
    return audit


def analyse(servers, firewalls, workaround, options, open_records=None, open_mode=otx.FINISH):
    """Pure: diagnose every link and plan its changes.  Returns (links, plan, preflight_errors).

    A link with an open transaction (`open_records`, xcon.open_transactions) gets no new plan: its
    recorded steps are finished (or, with `open_mode` rollback, undone) first."""
    with xlinks.indexed(firewalls):   # each firewall's passers indexed once, not scanned per link
        return _analysed(servers, firewalls, workaround, options, open_records, open_mode)


def _analysed(servers, firewalls, workaround, options, open_records, open_mode):
    by_name = {xdiag.norm(f.get("name")): f for f in firewalls}
    links, plan, preflight = [], [], []
    for link in xdiag.diagnose(servers, firewalls, options, requested=workaround):
        firewall = by_name.get(xdiag.norm(link.get("firewall")))
        link["topology"] = {"before": xtopology.picture(link, servers, firewall)}
        link["timeline"] = xtimeline.from_audit(link, servers)
        record = (open_records or {}).get(link["id"])
        if record is not None:
            changes, entries = otx.resume(link, record, open_mode, workaround)
            link["changes"] = changes
            plan += entries
            preflight += preflight_errors(link, changes, servers, options)
            links.append(link)
            continue
        try:
            changes = xplan.plan_changes(link, servers, firewall, workaround, options)
        except xplan.PlanError as exc:
            changes = []
            preflight.append(str(exc))
            link["plan_error"] = str(exc)
        link["changes"] = changes
        plan += [to_plan_entry(link, change, index, servers) for index, change in enumerate(changes)]
        preflight += preflight_errors(link, changes, servers, options)
        links.append(link)
    for link in links:
        link["verify_window"] = xev.verify_window(link, servers)
    preflight += duplicate_creates(plan)
    return links, plan, preflight


def open_new(records, links, plan, args):
    """Record a transaction for every link this run is about to change (before the first change),
    so that a run stopped at any point - a failure, Ctrl-C, a killed controller - is finished (or
    rolled back) by the next one."""
    added = False
    for link in links:
        entries = [e for e in plan if e["link"] == link["id"]]
        if entries and link["id"] not in records:
            workaround = link.get("workaround_chosen") or link.get("recommended_workaround")
            records[link["id"]] = otx.open_record(link, entries, args["run_id"], workaround, args["transparency_off_acknowledged"])
            added = True
    if added:
        otx.save(args["state_dir"], records)


def duplicate_creates(plan):
    """Two links that would create connectors of the same name (any case) on one server: one
    xcon_reverse_connector_name for several links of the same inside server."""
    seen = {}
    for entry in plan:
        if entry.get("action") == "create":
            key = (entry["target"], xdiag.norm(entry.get("object")))
            seen.setdefault(key, []).append(entry["link"])
    return [f"{target}: links {', '.join(links)} would each create a connector named {name!r} (directory names ignore case). "
            "Nothing was changed; leave xcon_reverse_connector_name empty (each link then gets <its connector>-REVERSE)."
            for (target, name), links in sorted(seen.items()) if len(links) > 1]


def planned_by_target(plan, targets):
    """Each target's own plan entries by phase, and the groups it belongs to (remediate.yml's plays).

    ``{host: {"groups": ["xcon_targets", "xcon_targets_<phase>", ...], "changes": {phase: [entry, ...]}}}``.
    A change play runs only on the servers that have that kind of change (``target_groups``), and a
    server's role reads its own entries (``XconAction.planned_changes``), never the whole fleet's
    plan (README "Performance").
    """
    planned = {host: {"groups": ["xcon_targets"], "changes": {}} for host in targets}
    for entry in plan:
        target = planned.setdefault(entry["target"], {"groups": ["xcon_targets"], "changes": {}})
        if entry["phase"] not in target["changes"]:
            target["groups"].append("xcon_targets_" + entry["phase"])
        target["changes"].setdefault(entry["phase"], []).append(entry)
    return planned


def target_groups(planned):
    """``{group: [host, ...]}``: the hosts of each of remediate.yml's change plays, from each
    target's groups.  The plays name these lists as their hosts, straight from the registered
    result: an add_host task per target cost Ansible about 10-15 ms each (2.1 s of a 100-link fix,
    9.2 s at 300 links)."""
    groups = {}
    for host in sorted(planned):
        for group in planned[host]["groups"]:
            groups.setdefault(group, []).append(host)
    return groups


def to_plan_entry(link, change, index, servers):
    """A planned change (xcon.plan) -> an executable plan entry.

    Adds: ``id`` (``<link>#<n>``), ``server`` (the directory's server name), ``target`` (the
    inventory host), ``phase`` (which role carries it out, in remediate.yml's order) and ``args``
    (the module arguments: xcon_connector options, or the firewall record's steps), and for firewall
    steps ``inverse`` (the steps that undo them, for rollback).
    """
    entry = copied(change)
    entry["id"] = f"{link['id']}#{index + 1}"
    entry["link"] = link["id"]
    server = servers.get(change["target"])
    entry["server"] = change["target"]
    entry["target"] = server["inventory_host"] if server else change["target"]
    if change["action"] == "operator":
        steps = change.get("firewall_steps") or []
        entry["phase"] = FIREWALL_PHASES.get(steps[0]["action"] if steps else "", "firewall_tunnel_close")
        entry["args"] = steps
        # The steps of one change are independent (e.g. two passers removed); undoing them in the
        # same order puts the firewall's rules back in their original order.  Rollback undoes the
        # changes themselves newest first.
        entry["inverse"] = [fw.inverse_step(s) for s in steps]
        return entry
    after = change.get("after") or {}
    name = change.get("connector") or after.get("name")
    args = {"server": change["target"], "name": name}
    for key in ("schedule", "two_way_alternate", "stack_address", "address_type", "cost", "display_name"):
        if key in after:
            args[key] = after[key]
    if after.get("clone_of"):
        args["clone_from"] = after["clone_of"]
    primaries = {str(link[side].get("connector") or "").lower() for side in ("inside", "outside")}
    if change["action"] == "create" or (name or "").lower() not in primaries:
        entry["phase"] = "reverse_connector"
    elif "stack_address" in after:
        # The inside server first (stack_repoint), the outside server after it succeeded
        # (stack_repoint_outside): with only the inside repointed, the inside accepts the outside's
        # associations and two-way alternate carries both directions, so a stop in between leaves
        # the link no worse; the other way round both directions are refused until both are done.
        inside = str(link["inside"].get("host") or "").lower()
        entry["phase"] = "stack_repoint" if str(change["target"]).lower() == inside else "stack_repoint_outside"
    else:
        entry["phase"] = "precondition"
    entry["args"] = args
    return entry


def preflight_errors(link, changes, servers, options):
    errors = []
    for change in changes:
        server = servers.get(change["target"])
        if server is not None and change["action"] != "operator" and server.get("write_access") is False:
            errors.append(f"{change['target']}: the account may not modify connectors (ask for 'Modify Admin Attributes' on the Connections container, or run with an account that has it).")
    return sorted(set(errors))


def link_line(link):
    codes = ", ".join(f["code"] for f in link.get("findings", []) if f.get("severity") in ("error", "warning", "unknown")) or "no finding"
    return f"{link['id']}: {link['status'].upper()} ({codes}); workaround: {link.get('recommended_workaround')} - {link.get('reason', '')}"
