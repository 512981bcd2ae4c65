"""The operator at the Exchange Administrator program (a mixin of :class:`model.Lab`): carries out an
Exchange Administrator change record (``xconlab admin apply FILE``) the way the program does it:
connected to the record's server, through that server's own directory service (RPC, not LDAP, so
it works on 4.0 and 5.0 alike and is not an LDAP write), one property page at a time; the change
then replicates to the other servers like any other (replication.py).

The record (the toolkit's ``exchange-administrator`` kind): ``server`` / ``connect_to``, ``action``
create | modify | delete, ``connector``, ``clone_of`` (create: "every page as on that connector"),
``pages``: ``[{page, fields: [{field, value}]}]`` with the pages' own words (General: Directory name,
Display name; Schedule: Never | Remote initiated | Selected times | Always; Stack: Address as
"IP address: A" or "Remote host name: H"; Connected Sites: Cost; Advanced: Two-way alternate
checked | cleared)."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping

from . import schema
from .base import SEP, FirewallRecordError, _iso
from .directory import Entry

SCHEDULES = {"never": 0, "selected times": 1, "always": 2, "remote initiated": 3}


def _fields(record: Mapping[str, Any]) -> Dict[str, str]:
    out = {}
    for page in record.get("pages") or []:
        for field in page.get("fields") or []:
            out[f"{page.get('page')}/{field.get('field')}".lower()] = str(field.get("value"))
    return out


def _set_pages(values: Dict[str, List[Any]], fields: Dict[str, str]) -> None:
    for key, value in fields.items():
        page, _, field = key.partition("/")
        if page == "general" and field == "display name":
            values["cn"] = [value]
            values["admin-display-name"] = [value]
        elif page == "schedule":
            values["activation-style"] = [SCHEDULES[value.lower()]]
        elif page == "stack":
            kind, _, address = value.partition(":")
            values["n-address"] = [address.strip().encode("ascii")]
            values["n-address-type"] = [1 if kind.strip().lower() == "ip address" else 0]
        elif page == "connected sites":
            values["connected-domains"] = [SEP.join(v.split(SEP)[:2] + [value] + v.split(SEP)[3:])
                                           for v in values.get("connected-domains", [])]
            values["routing-list"] = [v.rpartition(";")[0] + ";" + value for v in values.get("routing-list", [])]
            if not values["routing-list"]:
                values.pop("routing-list")
        elif page == "advanced" and field == "two-way alternate":
            values["two-way-alternate-facility"] = [value.lower() == "checked"]


class AdminProgramMixin:
    """``admin_apply`` of :class:`model.Lab` (state: ``servers``; ``_replicate`` from replication.py)."""

    def admin_apply(self, record: Mapping[str, Any]) -> Dict[str, Any]:
        with self.lock:
            if record.get("kind") != "exchange-administrator":
                raise FirewallRecordError("not an Exchange Administrator change record")
            server = self.servers.get(str(record.get("connect_to") or record.get("server")))
            if server is None:
                raise FirewallRecordError(f"unknown server {record.get('connect_to')!r}")
            directory = server.directory
            directory.own()
            name, action = str(record.get("connector")), record.get("action")
            dn = ((("cn", name),) + server.connections_dn)
            key = schema.dn_key(dn)
            fields = _fields(record)
            if action == "create":
                source = directory.find((("cn", str(record.get("clone_of"))),) + server.connections_dn)
                if source is None:
                    raise FirewallRecordError(f"connector {record.get('clone_of')!r} not found on {server.name}")
                if key not in directory.entries:
                    values = {k: list(v) for k, v in source.values.items()}
                    values["rdn"] = [name]
                    _set_pages(values, fields)
                    directory.put(key, Entry(dn, list(source.classes), values))
            elif action == "modify":
                entry = directory.entries.get(key)
                if entry is None:
                    raise FirewallRecordError(f"connector {name!r} not found on {server.name}")
                values = {k: list(v) for k, v in entry.values.items()}
                _set_pages(values, fields)
                directory.put(key, Entry(entry.dn, entry.classes, values))
            elif action == "delete":
                directory.drop(key)
            else:
                raise FirewallRecordError(f"action must be create, modify or delete, not {action!r}")
            directory.changes += 1
            text = schema.format_dn(dn)
            self._replicate(server, text)
            server.admin_changes.append({"action": action, "dn": text, "time": _iso(self.time), "run_id": record.get("run_id")})
            return {"server": server.name, "action": action, "dn": text}
