"""xcon_connector for a 4.0/5.0 server whose site has no Exchange 5.5 server: nothing can write its
connectors over LDAP (Platform SDK, "The Exchange Server Directory"), so the change becomes a guided
record for the Exchange Administrator program (xcon.admin_record), handed to the operator like the
firewall records (xcon.operator.hand_off: an operator command, the confirmation variable
``xcon_exchange_change_confirmed``, or the run stops awaiting it). Never a guess: the connectors are read
first (the server's own LDAP on 5.0, another replica on 4.0), nothing is done when they already are
as planned, and after the operator's change the MTA is restarted and the link verified by mail flow.

Supported: creating a connector as a copy of another (the reverse connector) and its rollback (the
delete), and modifying the planned properties; a rollback that would restore other values names the
values to restore in the record's pages."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from xcon import admin_record
from xcon import directory_route
from xcon import gather
from xcon import inputs
from xcon import operator
from xcon import state as xstate
from xcon.mask import mask
from xcon.ops import raise_first_failure


def _marker(action, task_vars, server, name, at):
    """Where a rollback remembers that the operator deleted connector `name` (journalled at `at`)."""
    state_dir = action.host_var(task_vars, "xcon_state_dir") or "."
    key = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{server}-{name}-{at}")
    return os.path.join(str(state_dir), "exchange-admin", f"{key}.deleted.json")


def run(action, args, task_vars, server, profile, connection_vars=None):
    """`task_vars`: the host's variables (its view, in a fleet task); `connection_vars`: the task's own
    variables when they are another host's (action.winrm_client)."""
    here = task_vars.get("inventory_hostname")
    servers = action.exchange_servers(task_vars)
    route = directory_route.read_source(here, servers)
    if route.get("host") is None:
        raise AnsibleActionFail(f"{server}: {route['reason']}; nothing was changed")
    if route["own"]:
        client, dir_server, port = action.winrm_client(task_vars, args.get("management_host"), connection_vars), server, action.ldap_port(args, task_vars)
    else:
        client, dir_server, port = action.directory_endpoint(task_vars, route["host"], connection_vars)
    organization = action.organization(args, task_vars)
    read = raise_first_failure(gather.run(client, [gather.connector_search_op(
        dir_server, profile, with_secrets=bool(args.get("clone_from")), ldap_port=port, organization=organization, resolve=False)]))
    entries = gather.homed_entries(read["connectors"].data.get("entries", []), server, profile)
    from xcon import connectors as xconn

    by_name = {xconn.decode_connector(e, server, profile)["name"].lower(): e for e in entries}
    current = by_name.get(args["name"].lower())
    change = dict(args)
    if args.get("restore"):
        record = args["restore"]
        if record.get("op") != "dir_create":
            raise AnsibleActionFail(f"rollback of {record.get('op')} {args['name']} on {server} through the Exchange "
                                    "Administrator program is not supported: restore its journalled values by hand")
        change = {"name": args["name"], "state": "absent"}
        # A replica of another site may not hold the connector yet (the directory replication
        # connector's schedule): then the journal, not the replica, says it exists, and a marker in
        # the state dir says whether the operator already deleted it.
        fresh = route["own"] or route["same_site"]
        done = _marker(action, task_vars, server, args["name"], record.get("at"))
        gone = (current is None) if fresh else os.path.exists(done)
        op, after_entry = (None, None) if gone else ({"op": "dir_delete"}, None)
    else:
        op, after_entry = action._plan(args, profile, server, current, by_name)
    directory = {"read_from": dir_server, "written_via": None, "own": False,
                 "replica": route["staleness"], "administrator_program": True}
    before = action._view(current, server, profile)
    result = {"dn": (current or {}).get("dn") or (after_entry or {}).get("dn", ""), "before": before, "winrm_commands": 1,
              "restart_required": False, "operations": [], "directory": directory}
    if op is None:
        return dict(result, changed=False, after=before)
    site = servers.get(here, {}).get("site")
    record = admin_record.render(change, server, site, organization,
                                 os.path.basename(os.path.normpath(str(args.get("run_dir") or ""))) or None)
    after = action._view(after_entry, server, profile)
    result.update(changed=True, after=after, restart_required=True, administrator_record=mask(record),
                  msg=record["instructions"],
                  diff={"before": "", "after": record["instructions"] + "\n",
                        "before_header": f"{server}: {args['name']}", "after_header": "Exchange Administrator change record"})
    if action._task.check_mode:
        return dict(result, status="awaiting_operator")
    # the run's directory; in a rollback, the rolled-back run's rollback/ (as its firewall records)
    rolled_back = (action.host_var(task_vars, "xcon_rollback_loaded", host="localhost") or {}).get("run_dir")
    run_dir = args.get("run_dir") or (os.path.join(rolled_back, "rollback") if rolled_back else None)
    if not run_dir:
        raise AnsibleActionFail(f"{server}: no run directory for the Exchange Administrator record (run_dir)")
    record_dir = os.path.join(str(run_dir), "exchange-admin")
    os.makedirs(record_dir, exist_ok=True)
    path = os.path.join(record_dir, f"{here}-{len(os.listdir(record_dir)):02d}.json")
    handed = operator.hand_off(record, path, record["instructions"],
                               action.host_var(task_vars, "xcon_exchange_operator_command"),
                               bool(inputs.as_bool(action.host_var(task_vars, "xcon_exchange_change_confirmed", False))))
    result.update(handed)
    if handed["status"] == "awaiting_operator":
        raise AnsibleActionFail(f"{server}: the connector change awaits the Exchange Administrator program: carry out "
                                f"{path[:-5]}.txt, then re-run with -e xcon_exchange_change_confirmed=true (the run verifies "
                                "the result by mail flow, not by trusting the confirmation); nothing was written over LDAP")
    if args.get("run_dir") and not args.get("restore"):
        from xcon.actions.connector import journal_entry   # (connector.py imports this module)

        xstate.journal_append(xstate.journal_path(args["run_dir"], here or server),
                              journal_entry(op, server, args["name"], current, after_entry))
    if args.get("restore"):
        xstate.write_json_atomic(_marker(action, task_vars, server, args["name"], args["restore"].get("at")), handed)
    if args.get("restart_marker"):
        xstate.note_restart(args["restart_marker"], f"administrator {record['action']} {args['name']}")
    result["ansible_facts"] = {"xcon_restart_pending": True}
    return result
