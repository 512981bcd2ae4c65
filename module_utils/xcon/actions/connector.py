"""xcon_connector: make one X.400 connector match what is asked (or clone, restore, remove it).

One WinRM command reads (the server's connectors, with secrets only when cloning), one writes
(a single dir_modify / dir_create / dir_delete, i.e. one SetInfo): a failure leaves the
connector as it was and a re-run converges.  Check mode stops after the read and returns the diff.
"""

from __future__ import annotations

import copy
import json

from ansible.errors import AnsibleActionFail

from xcon import connectors as xconn
from xcon import gather
from xcon import state as xstate
from xcon.action import XconAction
from xcon.mask import MASK, is_secret_key, mask
from xcon.ops import raise_first_failure
from xcon.specs import CONNECTOR

# Attributes a restore never writes: identity and naming (the DN stays), and anything masked.
# On 5.5 the naming attribute is `rdn` (LDAP `cn` is Display-Name, which a restore may write back).
RESTORE_SKIP = {"rdn", "name", "objectclass", "distinguishedname", "allowedattributeseffective"}


class ActionModule(XconAction):
    ARGUMENT_SPEC = CONNECTOR
    MUTUALLY_EXCLUSIVE = [["restore_entry", "clone_from"]]

    def xcon_run(self, args, task_vars):
        server = self.server_name(args, task_vars)
        profile = gather.get_profile(args["exchange_version"])
        client = self.winrm_client(task_vars, args.get("management_host"))
        read = raise_first_failure(gather.run(client, [gather.connector_search_op(server, profile, with_secrets=bool(args.get("clone_from")))]))
        entries = read["connectors"].data.get("entries", [])
        by_name = {xconn.decode_connector(e, server, profile)["name"].lower(): e for e in entries}
        current = by_name.get(args["name"].lower())
        op, after_entry = self._plan(args, profile, server, current, by_name)
        before = self._view(current, server, profile)
        result = {"dn": (current or {}).get("dn") or (after_entry or {}).get("dn", ""), "before": before, "winrm_commands": 1,
                  "restart_required": False, "operations": []}
        if op is None:
            result.update(changed=False, after=before)
            return result
        after = self._view(after_entry, server, profile)
        result.update(changed=True, after=after, operations=[mask(op)], restart_required=True,
                      diff={"before": _text(before), "after": _text(after), "before_header": f"{server}: {args['name']}", "after_header": f"{server}: {args['name']}"})
        if self._task.check_mode:
            return result
        write = gather.run(client, [op])
        result["winrm_commands"] = 2
        raise_first_failure(write, f"{op['op']} {args['name']} on {server}")
        if write[op["id"]].data.get("dn"):
            result["dn"] = write[op["id"]].data["dn"]
        result["ansible_facts"] = {"xcon_restart_pending": True}
        if args.get("restart_marker"):
            # Survives an interrupted run: the next run's xcon_mta_restart still restarts.
            xstate.note_restart(args["restart_marker"], f"{op['op']} {args['name']}")
        return result

    # -- planning -------------------------------------------------------------------------------
    def _plan(self, args, profile, server, current, by_name):
        """The one directory op that makes the connector right, and the entry as it would be after."""
        name = args["name"]
        if args["state"] == "absent":
            if current is None:
                return None, None
            return {"id": "write", "op": "dir_delete", "params": {"server": server, "dn": current["dn"]}}, None
        if args.get("restore_entry"):
            if current is None:
                raise AnsibleActionFail(f"cannot restore {name} on {server}: it no longer exists (restore recreates nothing; its secrets are not in the backup)")
            changes = restore_changes(args["restore_entry"], current)
        elif current is None:
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
    if not address:
        return "ip"
    parts = address.split(".")
    return "ip" if len(parts) == 4 and all(p.isdigit() for p in parts) else "hostname"


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


def restore_changes(saved, current):
    """dir_modify changes that set `current` back to the saved raw entry (differences only)."""
    saved_attrs = saved.get("attributes", {})
    current_attrs = current.get("attributes", {})
    lower_current = {k.lower(): k for k in current_attrs}
    changes = []
    for name, value in sorted(saved_attrs.items()):
        if name.lower() in RESTORE_SKIP or is_secret_key(name) or value == MASK:
            continue
        now = current_attrs.get(lower_current.get(name.lower(), name))
        if _norm(now) != _norm(value):
            changes.append({"attribute": name, "action": "replace", "values": value if isinstance(value, list) else [value]})
    saved_lower = {k.lower() for k in saved_attrs}
    for name in sorted(current_attrs):
        if name.lower() not in saved_lower and name.lower() not in RESTORE_SKIP and not is_secret_key(name):
            changes.append({"attribute": name, "action": "clear", "values": []})
    return changes


def _norm(value):
    if isinstance(value, list):
        return sorted(json.dumps(v, sort_keys=True) for v in value)
    return [json.dumps(value, sort_keys=True)] if value is not None else []


def _text(view):
    return json.dumps(view, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
