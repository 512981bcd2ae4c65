"""xcon_connector with `fleet`: every server's planned changes of one phase from one task (role
xcon_change).  Each server's changes are made one after the other in its own thread of a pool of
`forks` threads, with its own connection and contract variables, resolved first in this thread
(templating and Ansible's plugin loader are not thread-safe): a per-host task cost a forked Ansible
worker per server (6.2 s for each Stack repoint phase of a 100-link fix, README "Performance").
The fleet is cut into one share per core (xcon.fleet_fork), each resolved and worked by its own
process."""

from __future__ import annotations

import os
import uuid

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from xcon import fleet_fork
from xcon.action import plain
from xcon.actions import admin_change
from xcon.mask import mask
from xcon.specs import CONNECTOR

# The task's own options, and the options each change takes from its plan entry's args.
FLEET_OPTIONS = ("fleet", "phase", "stopped_links", "restart_marker_dir")
# A host whose process (xcon.fleet_fork) ended before it answered: whether its changes were made is unknown.
LOST = ("the process making this server's changes ended before it answered ({why}): whether each change "
        "was made is unknown.")
ENTRY_OPTIONS = ("server", "name", "state", "clone_from", "display_name", "schedule", "two_way_alternate", "stack_address",
                 "address_type", "cost")


def run(action, args, task_vars):
    """Apply the planned changes of phase `phase` of every host of `fleet` (the play's hosts): each
    host's entries in the diagnosis's plan (or its own xcon_change_changes), minus those of
    `stopped_links`, one after the other in the host's own thread, with its own connection and
    contract variables.  A host written through another server (4.0/5.0) or by the operator
    (admin_change) is done here, one at a time, beside the pool.  Every host gets
    ``hosts[host]["results"]``: one result per change, as a loop item's (``item`` the plan
    entry; ``failed`` and ``msg`` when it failed), which the gate and the report read."""
    if not args.get("phase"):
        raise AnsibleActionFail("fleet needs phase (which kind of planned change to apply)")
    given = [k for k in ENTRY_OPTIONS + ("restore", "restart_marker", "management_host")
             if args.get(k) not in (None, "", CONNECTOR[k].get("default"))]
    if given:
        raise AnsibleActionFail(f"with fleet, {given[0]} comes from each server's plan entries and variables, not from the task")
    hosts = [str(h) for h in args["fleet"]]
    stopped = set(args["stopped_links"] or [])
    # One share of the fleet per core (xcon.fleet_fork): each change's journal entry and restart
    # marker are on disk before its write is sent, so a process lost mid-share is an unanswered write.
    outcomes = fleet_fork.run_fleet(
        hosts, lambda share, threads, child: _share(action, args, task_vars, share, stopped, threads, child),
        action.fleet_threads(), lost=LOST)
    out = {}
    for host in hosts:
        ok, results = outcomes[host]
        if not ok and not isinstance(results, fleet_fork.ReaderLost):
            raise results
        out[host] = {"results": results if ok else _lost(action, args, task_vars, host, stopped, results)}
    diffs = []   # shown once, from the task's diff list
    for host in hosts:
        results = out[host]["results"]
        diffs += [diff for diff, r in ((r.pop("diff", None), r) for r in results) if diff and r.get("changed")]
        out[host].update(changed=any(r.get("changed") for r in results), failed=any(r.get("failed") for r in results),
                         winrm_commands=sum(r.get("winrm_commands", 0) for r in results))
    result = {"fleet": hosts, "fleet_id": uuid.uuid4().hex, "phase": args["phase"], "hosts": out,
              "changed": any(h["changed"] for h in out.values()),
              "failed_changes": {r["item"].get("id"): r.get("msg", "failed") for host in hosts for r in out[host]["results"] if r.get("failed")},
              "winrm_commands": sum(h["winrm_commands"] for h in out.values())}
    if diffs:
        result["diff"] = diffs
    return result


def _share(action, args, task_vars, hosts, stopped, threads, child):
    """{host: (True, results) | DEFER} of `hosts`: each host's settings and changes resolved by this
    thread (templating is not thread-safe), its changes handed to `threads` threads as soon as they
    are.  A host written through another server (the replication wait moves the lab's clock) or by
    the operator (one record after the other) is done by this thread, one at a time, while the
    threads work the others; in a forked process (`child`) it is DEFERred to the worker, as is a host
    whose client would kinit."""
    outcomes = {}

    def jobs():
        serial = []
        for host in hosts:
            view = action.host_view(task_vars, host)
            items = [_item(action, args, view, task_vars, host, entry) for entry in _planned(action, view, args["phase"], stopped)]
            own = all(isinstance(prepared, dict) and prepared["own"] for _, _, prepared in items)
            if not items:
                outcomes[host] = (True, [])
            elif child and not (own and fleet_fork.forkable(*(prepared["endpoint"][0] for _, _, prepared in items))):
                outcomes[host] = fleet_fork.DEFER
            elif own:
                yield host, _host, (action, host, items, None, None)
            else:
                serial.append((host, view, items))
        # every own host handed to the threads: the others here, while the threads work
        for host, view, items in serial:
            outcomes[host] = (True, _host(action, host, items, view, task_vars))

    outcomes.update(fleet_fork.thread_outcomes(jobs(), threads))
    return outcomes


def _lost(action, args, task_vars, host, stopped, exc):
    """The outcome of each change of a host whose process ended before it answered: failed, made or not."""
    view = action.host_view(task_vars, host)
    msg = (f"{action._task.action} ({host}): {exc} Its link stops here; the change journal and the restart marker "
           "hold what was sent: run again (or roll back) once the cause is known.")
    return [{"failed": True, "changed": False, "msg": msg, "item": entry} for entry in _planned(action, view, args["phase"], stopped)]


def _planned(action, view, phase, stopped):
    """A host's plan entries of `phase` (its own xcon_change_changes when set, else its entries in
    the diagnosis's plan), without those of stopped links."""
    entries = action.host_var(view, "xcon_change_changes")
    if entries is None:
        entries = action.planned_changes(view, view["inventory_hostname"]).get(phase) or []
    return [e for e in entries if isinstance(e, dict) and e.get("link") not in stopped]


def _item(action, args, view, task_vars, host, entry):
    """(entry, its validated options, what _prepare resolved or the exception that prevented it)."""
    own = {k: v for k, v in args.items() if k not in FLEET_OPTIONS and v is not None}
    own.update({k: v for k, v in (entry.get("args") or {}).items() if k in ENTRY_OPTIONS and v is not None})
    try:
        own["exchange_version"] = str(action.role_or_contract(view, "xcon_change_exchange_version", "xcon_exchange_version", "5.5"))
        marker = action.host_var(view, "xcon_change_restart_marker")
        own["restart_marker"] = marker or (os.path.join(args["restart_marker_dir"], host) if args.get("restart_marker_dir") else None)
        validation = ArgumentSpecValidator(CONNECTOR, mutually_exclusive=action.MUTUALLY_EXCLUSIVE).validate(own)
        if validation.error_messages:
            raise AnsibleActionFail(f"{host}: plan entry {entry.get('id')}: invalid arguments: " + "; ".join(validation.error_messages))
        own = plain(validation.validated_parameters)
        if not own.get("name"):
            raise AnsibleActionFail(f"{host}: plan entry {entry.get('id')} names no connector")
        return entry, own, action._prepare(own, view, task_vars)
    except Exception as exc:  # noqa: BLE001 - this change cannot be made: its outcome says why
        return entry, own, exc


def _host(action, host, items, view, task_vars):
    """One host's changes, one after the other; a failed change does not stop the next (as a loop)."""
    results = []
    for entry, own, prepared in items:
        try:
            if isinstance(prepared, Exception):
                raise prepared
            if prepared["admin"]:
                result = admin_change.run(action, own, view, prepared["server"], prepared["profile"], connection_vars=task_vars)
            else:
                result = action._apply(own, prepared)
        except AnsibleActionFail as exc:
            result = {"failed": True, "msg": str(getattr(exc, "message", None) or exc)}
        except Exception as exc:  # noqa: BLE001 - one change's failure is its own outcome
            result = action.failure(host, exc)
        result.pop("ansible_facts", None)   # one task cannot set another host's facts: the restart marker says it
        result.setdefault("changed", False)
        result["item"] = entry
        results.append(mask(result))
    return results
