"""Each server's replica of the organisation's directory, how changes replicate, and what LDAP each
Exchange version answers with (a mixin of :class:`model.Lab`). Written from the sources
(docs/facts.md "Exchange 4.0 and 5.0: their directories"), not from the toolkit:

* every server holds a replica of the whole organisation's directory; its MTA reads its own
  replica (Platform SDK "The Exchange Server Directory": the servers of a site replicate their
  directory multi-master);
* a change made on one server reaches the other servers of its site after "Pause After Modify"
  (default 300 s, Q137203): ``replication.intra_site_minutes`` (default 5) emulated minutes; the
  servers of other sites get it over the directory replication connector, by its schedule
  (Q254188): ``replication.intersite_minutes`` (default 180, a lab assumption) minutes later;
  replication is object based: the whole object travels (Q192656);
* an object of another site is readable from every replica and writable only in its own site (the
  answer to such a write is not documented: the lab answers UnwillingToPerform, an assumption);
* LDAP per version: 5.5 serves LDAP v3 (search, add, modify, delete); 5.0 answers searches and
  refuses every write (the SDK: "only capable of searching"; the LDAP result is not documented:
  unwillingToPerform, 0x80072035, an assumption); 4.0 has no LDAP listener, so ADSI fails as for a
  server that does not answer: ServerUnavailable, 0x8007203A "The server is not operational.";
* every write sent to a server's own LDAP is recorded (``Server.ldap_writes``, in the snapshot as
  ``ldap_writes``), so tests can assert that none was ever sent to a 4.0 or 5.0 server.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from . import schema
from .base import _iso, _op_error
from .directory import Directory, Entry
from .servers import Server

WRITE_OPS = ("dir_modify", "dir_create", "dir_delete")
UNWILLING = "0x80072035"          # ERROR_DS_UNWILLING_TO_PERFORM as an HRESULT (LDAP result 53)
DEFAULT_INTRA_SITE_MINUTES = 5    # Q137203: Pause After Modify, 300 seconds by default
DEFAULT_INTERSITE_MINUTES = 180   # lab assumption: the directory replication connector's schedule


def replica_of(seed: Directory, site: str) -> Directory:
    """A server's replica: the organisation's objects as ``seed`` holds them (entries are the
    replica's own; attribute values are shared until a write replaces them, as writes always do)."""
    replica = Directory(seed.organization, site)
    replica.share(seed)      # copied on its first change (own())
    return replica


def site_of(dn: schema.Dn) -> Optional[str]:
    """The site an object belongs to (its ``ou=`` component), or None above the sites."""
    for kind, value in dn:
        if kind == "ou":
            return value
    return None


class ReplicationMixin:
    """Replicas and replication of :class:`model.Lab` (state: ``servers``, ``minute``, ``time``)."""

    def _init_replication(self, settings: Dict[str, Any]) -> None:
        self.intra_site_minutes = int(settings.get("intra_site_minutes", DEFAULT_INTRA_SITE_MINUTES))
        self.intersite_minutes = int(settings.get("intersite_minutes", DEFAULT_INTERSITE_MINUTES))
        self.pending: List[Tuple[int, int, str, tuple, Optional[Entry]]] = []   # (due, seq, server, key, entry)
        self.replication_seq = 0

    # -- LDAP per version -----------------------------------------------------------------------
    def _ldap_answers(self, server: Server, op: str, params: Dict[str, Any]) -> None:
        """Refuse what the server's version cannot do over LDAP (recording every write)."""
        version = server.spec.get("exchange", "5.5")
        if op in WRITE_OPS:
            dn = params.get("parent" if op == "dir_create" else "dn") or ""
            record = {"op": op, "dn": dn, "time": _iso(self.time), "exchange": version, "answer": "sent"}
            server.ldap_writes.append(record)
            if version == "4.0":
                record["answer"] = "ServerUnavailable"
            elif version == "5.0":
                record["answer"] = "UnwillingToPerform"
        if version == "4.0":
            raise _op_error("ServerUnavailable", f"The server is not operational. (LDAP://{server.name}: Exchange "
                            "Server 4.0 has no LDAP service)", "0x8007203A")
        if version == "5.0" and op in WRITE_OPS:
            raise _op_error("UnwillingToPerform", f"The server is unwilling to process the request. ({op} on "
                            f"{server.name}: the Exchange Server 5.0 directory answers LDAP searches only)", UNWILLING)
        if version == "5.0" and op == "dir_root":
            # LDAP v2 has no RootDSE (the SDK: 5.0's LDAP searches for directory objects only).
            raise _op_error("NoSuchObject", f"There is no such object on the server: 'RootDSE' ({server.name} "
                            "runs Exchange Server 5.0).")

    def _check_own_site(self, server: Server, dn_text: str) -> None:
        """Objects are changed in their own site: another site's object is read-only in this replica."""
        try:
            site = site_of(schema.parse_dn(dn_text))
        except Exception:   # noqa: BLE001 - a bad DN is the directory's own error, raised by the write
            return
        if site is not None and site.casefold() != server.site.casefold():
            raise _op_error("UnwillingToPerform", f"The server is unwilling to process the request. ('{dn_text}' "
                            f"belongs to site {site}; {server.name}'s replica holds it read-only: change it on a "
                            "server of that site)", UNWILLING)

    # -- replication -----------------------------------------------------------------------------
    def _replicate(self, source: Server, dn_text: str) -> None:
        """Schedule the object (as ``source``'s replica now holds it, or its deletion) for every
        other server: its site's after ``intra_site_minutes``, other sites' after the inter-site
        schedule as well."""
        key = schema.dn_key(schema.parse_dn(dn_text))
        entry = source.directory.entries.get(key)   # shared by the replicas: an entry is never changed in place
        for name, server in sorted(self.servers.items()):
            if server is source:
                continue
            due = self.minute + self.intra_site_minutes
            if server.site.casefold() != source.site.casefold():
                due += self.intersite_minutes
            self.replication_seq += 1
            self.pending.append((due, self.replication_seq, name, key, entry))

    def _replication_step(self) -> None:
        """Apply every replication due by the current minute, in the order the changes were made."""
        if not self.pending:
            return
        due_now = sorted(p for p in self.pending if p[0] <= self.minute)
        if not due_now:
            return
        self.pending = [p for p in self.pending if p[0] > self.minute]
        for _due, _seq, name, key, entry in due_now:
            directory = self.servers[name].directory
            directory.own()
            if entry is None:
                directory.drop(key)
            else:
                directory.put(key, entry)
            directory.changes += 1

    def replication_state(self, server: Server) -> Dict[str, Any]:
        """What is still on its way to this server's replica (snapshot)."""
        waiting = [p for p in self.pending if p[2] == server.name]
        return {"pending": len(waiting),
                "next_due_minute": min((p[0] for p in waiting), default=None)}
