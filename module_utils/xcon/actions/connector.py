"""xcon_connector: make one X.400 connector match what is asked (or clone, restore, remove it).

One WinRM command reads (the server's connectors, with secrets only when cloning), one writes
(a single dir_modify / dir_create / dir_delete, i.e. one SetInfo): a failure leaves the
connector as it was and a re-run converges.  Check mode stops after the read and returns the diff.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import json

from ansible.errors import AnsibleActionFail

from xcon import connectors as xconn
from xcon import directory_route
from xcon import gather
from xcon import inputs
from xcon import profile as xprofile
from xcon import state as xstate
from xcon.action import XconAction
from xcon.actions import admin_change, connector_fleet, replication_wait
from xcon.mask import MASK, is_secret_key, mask
from xcon.ops import raise_first_failure
from xcon.specs import CONNECTOR

# Attributes a restore never writes: identity and naming (the DN stays), anything masked, and the
# profile's naming attribute (on 5.5 `rdn`; LDAP `cn` is Display-Name, which a restore may write
# back) and constructed rights attribute.
RESTORE_SKIP = {"name", "objectclass", "distinguishedname"}


def restore_skip(profile):
    return RESTORE_SKIP | {xprofile.attribute(profile, "name").lower(), gather.rights_attribute(profile).lower()}


class ActionModule(XconAction):
    ARGUMENT_SPEC = CONNECTOR
    MUTUALLY_EXCLUSIVE = [["restore", "clone_from"]]

    def xcon_run(self, args, task_vars):
        if args.get("fleet") is not None:
            return connector_fleet.run(self, args, task_vars)
        if not args.get("name"):
            raise AnsibleActionFail("name: required (unless fleet is given)")
        fleet_only = [k for k in connector_fleet.FLEET_OPTIONS if args.get(k)]
        if fleet_only:
            raise AnsibleActionFail(f"{fleet_only[0]}: only with fleet")
        prepared = self._prepare(args, task_vars, task_vars)
        if prepared["admin"]:
            return admin_change.run(self, args, task_vars, prepared["server"], prepared["profile"])
        return self._apply(args, prepared)

    def _prepare(self, args, view, task_vars):
        """Everything one change reads from Ansible's variables (`view`: the host's own, as a fleet
        task sees them; `task_vars`: the task's), resolved before any wire work: templating and the
        plugin loader are not thread-safe, so a fleet task calls this in its own thread only."""
        server = self.server_name(args, view)
        profile = gather.get_profile(args["exchange_version"])
        here = view.get("inventory_hostname")
        # Where the write goes (xcon.directory_route): the server's own LDAP on 5.5; for 4.0/5.0 a 5.5
        # server of its site, whose change then replicates to it (Platform SDK "The Exchange Server
        # Directory"). Never is a write sent to a 4.0 or 5.0 server's own directory.  None: no
        # Exchange 5.5 server in its site, the operator makes the change in the Exchange
        # Administrator program, from a guided record (admin_change).
        via = here if xprofile.can_write_directory(profile) else directory_route.write_source(here, self.exchange_servers(view))
        prepared = {"host": here, "server": server, "profile": profile, "organization": self.organization(args, view),
                    "site": self.site(args, view), "own": via == here, "admin": via is None}
        if via is None:
            return prepared
        connection_vars = None if view is task_vars else task_vars
        own = (self.winrm_client(view, args.get("management_host"), connection_vars), server, self.ldap_port(args, view))
        if via == here:
            prepared["endpoint"] = own
        else:
            prepared["endpoint"] = self.directory_endpoint(view, via, connection_vars)
            # the replication wait (_await): the server's own replica, its timeout, the lab's clock
            prepared["replica"] = dict(zip(("client", "server", "port"), own))
            prepared["replication_timeout"] = int(self.host_var(view, "xcon_replication_timeout_minutes")
                                                  or replication_wait.DEFAULT_TIMEOUT_MINUTES)
            prepared["lab_control"] = self.host_var(view, "xcon_lab_control")
        return prepared

    def _apply(self, args, prepared):
        """One change on the wire, from what _prepare resolved (no templating here)."""
        server, profile, organization, here = prepared["server"], prepared["profile"], prepared["organization"], prepared["host"]
        client, dir_server, ldap_port = prepared["endpoint"]
        read = gather.run(client, [gather.directory_root_op(dir_server, ldap_port),
                                   gather.connector_search_op(dir_server, profile, with_secrets=bool(args.get("clone_from")),
                                                              ldap_port=ldap_port, organization=organization, resolve=False,
                                                              site=prepared["site"])])
        wrong = gather.directory_problem(read.get("directory"), organization, ldap_port, dir_server)
        if wrong:
            raise AnsibleActionFail(f"{gather.WRONG_DIRECTORY}: {dir_server}: {wrong}; nothing was changed")
        capped = gather.search_capped(read.get("connectors"), profile)
        if capped:   # a connector missing from a short list would be created a second time
            raise AnsibleActionFail(f"{gather.SEARCH_CAPPED}: {dir_server}: {capped}; nothing was changed")
        read = raise_first_failure(read)
        # Every replica holds the whole organisation: only this server's connectors count.
        entries = gather.homed_entries(read["connectors"].data.get("entries", []), server, profile)
        by_name = {xconn.decode_connector(e, server, profile)["name"].lower(): e for e in entries}
        current = by_name.get(args["name"].lower())
        rollback = {}
        if args.get("restore"):
            op, after_entry, rollback = plan_restore(args["restore"], current, server, args["force"], profile)
            if op is None:
                return dict(rollback, dn=(current or {}).get("dn", args["restore"].get("dn", "")), changed=False, winrm_commands=1,
                            restart_required=False, operations=[], before=self._view(current, server, profile),
                            after=self._view(current, server, profile))
        else:
            op, after_entry = self._plan(args, profile, server, current, by_name)
        if op is not None and op.get("op") == "dir_create":
            # The directory's limit on the name, checked here too, so that check mode refuses what
            # the write would be refused for (xcon.inputs holds the limit).
            problem = inputs.name_problem(args["name"], "connector name")
            if problem:
                raise ValueError(f"cannot create {args['name'][:80]!r} on {server}: {problem}")
        if op is not None:
            op["params"]["server"] = dir_server
            if ldap_port != gather.DEFAULT_LDAP_PORT:
                op["params"]["port"] = ldap_port
            # Octet-string values travel typed (the script reads no schema) and are checked here, so a
            # value the script would refuse is refused before anything is sent.
            op = gather.typed_op(op, profile, {n for e in entries for n in e.get("octets") or []})
        before = self._view(current, server, profile)
        result = {"dn": (current or {}).get("dn") or (after_entry or {}).get("dn", ""), "before": before, "winrm_commands": 1,
                  "restart_required": False, "operations": [],
                  "directory": {"read_from": dir_server, "written_via": dir_server if op is not None else None,
                                "own": prepared["own"]}}
        if op is None:
            result.update(changed=False, after=before)
            waiting = replication_wait.pending_path(args.get("restart_marker"))
            if not prepared["own"] and current and not self._task.check_mode and waiting and os.path.exists(waiting):
                # An earlier run wrote this and stopped before the change had replicated: the re-run
                # completes the wait, then the MTA restart activates it.
                compare = {"op": "dir_modify", "params": {"changes": [
                    {"attribute": xprofile.attribute(profile, k)} for k in ("schedule", "stack_address", "two_way_alternate")]}}
                result["directory"]["replication"] = self._await(args, prepared, compare, current["dn"])
                xstate.note_restart(args["restart_marker"], f"replicated {args['name']}")
                result.update(changed=True, restart_required=True, ansible_facts={"xcon_restart_pending": True})
            return result
        after = self._view(after_entry, server, profile)
        result.update(changed=True, after=after, operations=[mask(op)], restart_required=xconn.op_restart_required(op, profile),
                      diff={"before": _text(before), "after": _text(after), "before_header": f"{server}: {args['name']}", "after_header": f"{server}: {args['name']}"})
        result.update(rollback)
        if self._task.check_mode:
            return result
        if args.get("run_dir") and not args.get("restore"):
            # Recorded before the write is sent: rollback restores exactly what was written (a write
            # that then fails leaves the object as it was, which rollback recognises).
            xstate.journal_append(xstate.journal_path(args["run_dir"], here or server),
                                  journal_entry(op, server, args["name"], current, after_entry))
        marker = args.get("restart_marker") if result["restart_required"] else None
        already_pending = xstate.restart_pending(marker)
        if marker:
            # Written before the write is sent, and survives an interrupted run: when the server
            # applies the write but its answer is lost, the next run still restarts the MTA.
            xstate.note_restart(marker, f"{op['op']} {args['name']}")
        write = gather.run(client, [op])  # a transport failure here: outcome unknown, the marker stays
        result["winrm_commands"] = 2
        try:
            raise_first_failure(write, f"{op['op']} {args['name']} on {server}")
        except Exception:
            if marker and not already_pending:
                xstate.clear_restart(marker)  # the server answered and refused: nothing changed
            raise
        if write[op["id"]].data.get("dn"):
            result["dn"] = write[op["id"]].data["dn"]
        result["ansible_facts"] = {"xcon_restart_pending": True}
        if not prepared["own"]:
            result["directory"]["replication"] = self._await(args, prepared, op, replication_wait.written_dn(op, write[op["id"]].data.get("dn")))
        return result

    @staticmethod
    def _await(args, prepared, op, dn):
        """Wait until `op`'s change, written through the 5.5 server of prepared["endpoint"], is in
        the server's own replica (prepared["replica"])."""
        waiting = replication_wait.pending_path(args.get("restart_marker"))
        via = dict(zip(("client", "server", "port"), prepared["endpoint"]))
        try:
            waited = replication_wait.await_replication(prepared["replica"], via, op, dn, prepared["profile"],
                                                        prepared["replication_timeout"], prepared["lab_control"])
        except AnsibleActionFail:
            if waiting:   # the re-run waits again and restarts the MTA once the change is there
                xstate.write_json_atomic(waiting, {"dn": dn, "via": via["server"]})
            raise
        if waiting and os.path.exists(waiting):
            os.unlink(waiting)
        return waited

    # -- planning -------------------------------------------------------------------------------
    def _plan(self, args, profile, server, current, by_name):
        """The one directory op that makes the connector right, and the entry as it would be after."""
        name = args["name"]
        if args["state"] == "absent":
            if current is None:
                return None, None
            return {"id": "write", "op": "dir_delete", "params": {"server": server, "dn": current["dn"]}}, None
        if current is None:
            source_name = args.get("clone_from")
            if not source_name:
                raise AnsibleActionFail(f"connector {name!r} does not exist on {server}; give clone_from to create it as a copy of another connector")
            source = by_name.get(source_name.lower())
            if source is None:
                raise AnsibleActionFail(f"clone_from: connector {source_name!r} does not exist on {server} (found: {', '.join(sorted(by_name)) or 'none'})")
            attributes = xconn.clone_attributes(
                source, profile, name=name, display_name=args.get("display_name") or name,
                stack_address=args.get("stack_address") or xconn.decode_connector(source, server, profile)["stack_address"],
                address_type=args.get("address_type") or guess_address_type(args.get("stack_address")),
                cost=args["cost"] if args.get("cost") is not None else 99,
                schedule=args.get("schedule") or "remote",
            )
            params = xconn.create_params(server, source["dn"], name, attributes, profile)
            op = {"id": "write", "op": "dir_create", "params": params}
            after = {"dn": f"cn={xconn.escape_rdn_value(name)},{params['parent']}",
                     "objectClass": source.get("objectClass", []), "attributes": dict(attributes)}
            return op, after
        else:
            desired = {k: args[k] for k in ("schedule", "two_way_alternate", "stack_address", "address_type", "cost", "display_name") if args.get(k) is not None}
            if "stack_address" in desired and "address_type" not in desired:
                desired["address_type"] = guess_address_type(desired["stack_address"])
            if args.get("remote_password") is not None:
                desired["remote_password"] = args["remote_password"]
            changes = xconn.encode_changes(desired, current, profile)
        if not changes:
            return None, None
        op = {"id": "write", "op": "dir_modify", "params": {"server": server, "dn": current["dn"], "changes": changes}}
        return op, apply_changes(current, changes)

    @staticmethod
    def _view(entry, server, profile):
        return mask(xconn.decode_connector(entry, server, profile)) if entry else {}


def guess_address_type(address):
    """N-Address-Type for a Stack address: "ip" for an IPv4 or IPv6 literal (10.0.0.300 is not one),
    "hostname" otherwise; "ip" when there is no address."""
    if not address:
        return "ip"
    try:
        ipaddress.ip_address(str(address).strip())
        return "ip"
    except ValueError:
        return "hostname"


def apply_changes(entry, changes):
    """The raw entry as it would be after a dir_modify's changes (for diff and check mode)."""
    entry = copy.deepcopy(entry)
    attrs = entry.setdefault("attributes", {})
    for change in changes:
        name, action, values = change["attribute"], change["action"], list(change.get("values", []))
        key = next((k for k in attrs if k.lower() == name.lower()), name)
        multi = isinstance(attrs.get(key), list)
        if action == "replace":
            attrs[key] = values if multi or len(values) != 1 else values[0]
        elif action == "clear":
            attrs.pop(key, None)
        elif action == "append":
            existing = attrs.get(key, [])
            attrs[key] = (existing if isinstance(existing, list) else [existing]) + values
        elif action == "remove":
            existing = attrs.get(key, [])
            existing = existing if isinstance(existing, list) else [existing]
            attrs[key] = [v for v in existing if v not in values]
    return entry


def _attr(attrs, name):
    """An attribute's value, its name matched without regard to case (LDAP names are case-blind)."""
    key = next((k for k in attrs if k.lower() == name.lower()), None)
    return attrs.get(key) if key is not None else None


def _journal_value(name, value):
    return MASK if is_secret_key(name) and value not in (None, "", []) else value


def journal_entry(op, server, name, current, after):
    """What one write changes, attribute by attribute: the value before and the value written."""
    entry = {"op": op["op"], "server": server, "name": name, "at": xstate.now_utc()}
    if op["op"] == "dir_create":
        entry.update(dn=after["dn"], attributes={k: _journal_value(k, v) for k, v in after.get("attributes", {}).items()})
    elif op["op"] == "dir_delete":
        entry.update(dn=current["dn"], attributes={k: _journal_value(k, v) for k, v in current.get("attributes", {}).items()})
    else:
        before_attrs, after_attrs = current.get("attributes", {}), after.get("attributes", {})
        entry.update(dn=current["dn"], attributes={
            change["attribute"]: {"before": _journal_value(change["attribute"], _attr(before_attrs, change["attribute"])),
                                  "written": _journal_value(change["attribute"], _attr(after_attrs, change["attribute"]))}
            for change in op["params"]["changes"]})
    return entry


def _same(a, b):
    return _norm(a) == _norm(b)


def _shown(attribute, value, profile):
    """A raw value as a person reads it: the Stack address as text, an enumeration with its name."""
    if value is None:
        return "(absent)"
    spec = next((v for v in (profile or {}).get("attributes", {}).values() if v["name"].lower() == attribute.lower()), None)
    if spec and spec is profile["attributes"].get("stack_address") and isinstance(value, str):
        return repr(xconn.hex_to_text(value, profile["assumptions"]["n_address_encoding"]))
    if spec and spec.get("values") and not isinstance(value, list):
        try:
            return f"{value} ({spec['values'][int(value)]})"
        except (KeyError, TypeError, ValueError):
            pass
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def three_values(conflict, profile=None):
    """'attr: before the run X, written by the run Y, now Z; ...' for people."""
    return "; ".join(f"{attribute}: before the run {_shown(attribute, v['before'], profile)}, written by the run "
                     f"{_shown(attribute, v['written'], profile)}, now {_shown(attribute, v['now'], profile)}"
                     for attribute, v in sorted(conflict.items()))


def plan_restore(record, current, server, force=False, profile=None):
    """Rollback of one journaled write: the op that undoes it, the entry after, and the verdict.

    Only what the run wrote is undone, and only where the object still holds what the run wrote;
    a value changed since (by someone else) is a conflict: nothing is written for that object and
    the three values are returned, unless `force`.  Returns (op, after_entry, info) where info has
    ``rollback`` (restore | restored_already | conflict | forced | not_restorable) and, for a
    conflict, ``conflict`` ({attribute: {before, written, now}}).
    """
    name = record.get("name")
    if record.get("op") == "dir_delete":
        return None, None, {"rollback": "not_restorable", "msg": f"{name} on {server} was deleted by the run; rollback recreates nothing (its secrets are not kept)"}
    if record.get("op") == "dir_create":
        if current is None:
            return None, None, {"rollback": "restored_already", "msg": f"{name} on {server} (created by the run) no longer exists"}
        now_attrs = current.get("attributes", {})
        conflict = {k: {"before": None, "written": v, "now": _attr(now_attrs, k)}
                    for k, v in sorted(record.get("attributes", {}).items())
                    if not is_secret_key(k) and v != MASK and k.lower() not in restore_skip(profile) and not _same(_attr(now_attrs, k), v)}
        info = {"rollback": "restore", "msg": f"delete {name} on {server} (created by the run)"}
        if conflict:
            if not force:
                return None, None, {"rollback": "conflict", "conflict": conflict,
                                    "msg": f"{name} on {server} was created by the run and changed since; not deleted: {three_values(conflict, profile)}"}
            info = {"rollback": "forced", "conflict": conflict, "msg": f"delete {name} on {server} although it was changed since (forced): {three_values(conflict, profile)}"}
        return {"id": "write", "op": "dir_delete", "params": {"server": server, "dn": current["dn"]}}, None, info
    if current is None:
        return None, None, {"rollback": "conflict", "conflict": {"(the connector)": {"before": "present", "written": "present", "now": "absent"}},
                            "msg": f"{name} on {server} no longer exists; rollback recreates nothing"}
    now_attrs = current.get("attributes", {})
    changes, conflict = [], {}
    for attribute, values in sorted(record.get("attributes", {}).items()):
        before, written, now = values.get("before"), values.get("written"), _attr(now_attrs, attribute)
        if is_secret_key(attribute) or MASK in (before, written) or _same(now, before):
            continue  # a secret is never kept; or already as before
        if not _same(now, written):
            conflict[attribute] = {"before": before, "written": written, "now": now}
        if before is None:
            changes.append({"attribute": attribute, "action": "clear", "values": []})
        else:
            changes.append({"attribute": attribute, "action": "replace", "values": before if isinstance(before, list) else [before]})
    if conflict and not force:
        return None, None, {"rollback": "conflict", "conflict": conflict,
                            "msg": f"{name} on {server} was changed since the run wrote it; nothing restored on it: {three_values(conflict, profile)}"}
    if not changes:
        return None, None, {"rollback": "restored_already", "msg": f"{name} on {server} already holds what it held before the run"}
    op = {"id": "write", "op": "dir_modify", "params": {"server": server, "dn": current["dn"], "changes": changes}}
    info = {"rollback": "forced", "conflict": conflict, "msg": f"restore {name} on {server} although it was changed since (forced): {three_values(conflict, profile)}"} if conflict else \
        {"rollback": "restore", "msg": f"restore {', '.join(c['attribute'] for c in changes)} of {name} on {server}"}
    return op, apply_changes(current, changes), info


def _norm(value):
    if isinstance(value, list):
        return sorted(json.dumps(v, sort_keys=True) for v in value)
    return [json.dumps(value, sort_keys=True)] if value is not None else []


def _text(view):
    return json.dumps(view, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
