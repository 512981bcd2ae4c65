"""The lab's Exchange servers: one server's state (queues, events, service, counters, registry) and
the MTA's view of one connector (see model.py)."""
from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from . import schema
from .base import EVENT_LOG_CAP, MTA_PARAMETERS_KEY, MTA_SERVICE, OTHER_SERVICES, SEP, X400_PORT, _ip, _iso
from .directory import Directory, Entry
from .events import DEFAULT_BUILDS, EVENTS, event_9301_mode, format_message, message_not_formatted
from .services import RUNNING, STOPPED, ServiceManager

if TYPE_CHECKING:
    from .model import Lab


class Link:
    """The MTA's view of one connector (read from the directory every minute)."""

    __slots__ = ("server", "key", "name", "dn", "style", "grid", "twa", "address", "address_type",
                 "remote", "cost", "retry")

    def __init__(self, server: str, entry: Entry) -> None:
        self.server = server
        self.name = entry.name
        self.key = entry.name.casefold()
        self.dn = entry.dn
        self.style = entry.get("Activation-Style", 2)          # absent: Always (lab assumption)
        self.grid = entry.get("Activation-Schedule", b"")
        self.twa = bool(entry.get("Two-Way-Alternate-Facility", False))
        raw = entry.get("N-Address")
        self.address = raw.decode("ascii", errors="replace") if raw else None
        self.address_type = entry.get("N-Address-Type", 1 if raw and _ip(self.address) else 0)
        self.remote = (entry.get("Gateway-Local-Desig") or "").casefold()
        self.cost = _cost(entry)
        self.retry = max(60, int(entry.get("Open-Retry-Interval", 600)))

    @property
    def x500(self) -> str:
        return schema.x500_upper(self.dn)


def _cost(entry: Entry) -> int:
    """Lowest cost field of Connected-Domains (ORG§SITE§cost§addr) and Routing-List (addr;cost)."""
    costs = []
    for value in entry.get_all("Connected-Domains"):
        fields = value.split(SEP)
        if len(fields) >= 3 and fields[2].strip().isdigit():
            costs.append(int(fields[2]))
    for value in entry.get_all("Routing-List"):
        tail = value.rpartition(";")[2].strip()
        if tail.isdigit():
            costs.append(int(tail))
    return min(costs) if costs else 1


class Server:
    """State of one Exchange server: queues, events, service, counters."""

    def __init__(self, name: str, spec: Mapping[str, Any], directory: Directory, org: str) -> None:
        self.name = name
        self.spec = spec
        self.site = spec["site"]
        self.address = spec["address"]
        self.fqdn = spec.get("fqdn")
        self.ldap_port = spec.get("ldap_port", 389)
        self.domain_controller = spec.get("domain_controller", False)
        self.mta_port = spec.get("mta_port", X400_PORT)
        # HKEY_LOCAL_MACHINE as far as the lab models it: the MTA's Parameters key always exists;
        # "RFC1006 Port Number" (REG_DWORD) only when the port was changed from 102 (Q161931).
        parameters: Dict[str, Any] = {}
        if self.mta_port != X400_PORT:
            parameters["RFC1006 Port Number"] = self.mta_port
        self.registry: Dict[str, Dict[str, Any]] = {MTA_PARAMETERS_KEY.lower(): parameters}
        self.directory = directory
        site_dn = (("ou", self.site), ("o", org))
        self.servers_dn = (("cn", "Servers"), ("cn", "Configuration")) + site_dn
        self.server_dn = (("cn", name),) + self.servers_dn
        self.mta_dn = (("cn", "Microsoft MTA"),) + self.server_dn
        self.mta_key = schema.dn_key(self.mta_dn)
        self.stack_dn = (("cn", f"TCP ({name})"),) + self.server_dn
        self.connections_dn = (("cn", "Connections"), ("cn", "Configuration")) + site_dn
        self.queues: Dict[str, Dict[str, Any]] = {}   # connector key -> {"name", "dest", "count"}
        self.work: Dict[str, int] = {}                 # destination server -> unrouted messages
        self.retry_at: Dict[str, _dt.datetime] = {}    # connector key -> next allowed attempt
        self.backlogged: set = set()                   # connector keys (and "*work*") over threshold
        self.peaks: Dict[str, int] = {}                # connector name -> highest queue length seen
        self.events: List[Dict[str, Any]] = []
        self.next_record = 1
        exchange = spec.get("exchange", "5.5")
        self.mta_version, default_build = DEFAULT_BUILDS.get(exchange, DEFAULT_BUILDS["5.5"])
        self.mta_build = spec.get("mta_build") or default_build
        self.mode_9301 = event_9301_mode(self.mta_build)
        self.reverse_lookup = dict(spec.get("reverse_lookup") or {})   # address -> name | None (fails)
        self.messages_formatted = spec.get("message_dll", "reachable") != "unreachable"
        # The server's own clock: it stamps its events, and NetRemoteTOD (event_query's `now`) reads it.
        self.clock_offset = _dt.timedelta(minutes=spec.get("clock_offset_minutes", 0))
        self.event_reads = 0            # entries event_query walked (a read of the whole log shows here)
        self.restarts = 0
        self.services = ServiceManager(name, self.service_specs(spec), _dt.datetime.min, self._service_changed)
        self.associations = {"outbound_ok": 0, "outbound_failed": 0, "inbound_ok": 0, "inbound_refused": 0}
        self.ldap_writes: List[Dict[str, Any]] = []    # every write sent to this server's own LDAP
        self.admin_changes: List[Dict[str, Any]] = []  # changes made in the Exchange Administrator program

    @staticmethod
    def service_specs(spec: Mapping[str, Any]):
        """The server's services: the Exchange ones (the MTA depends on the directory service,
        Q244035; it takes ``mta_stop_seconds`` to stop) and the topology's ``services``."""
        out = [{"name": other, "stop_seconds": 5} for other in OTHER_SERVICES]
        out += [{"name": MTA_SERVICE, "depends_on": ["MSExchangeDS"], "stop_seconds": spec.get("mta_stop_seconds", 5)}]
        return out + [dict(s) for s in spec.get("services") or []]

    @property
    def state(self) -> str:
        """The MTA service's state (as the service manager last settled it)."""
        return self.services.get(MTA_SERVICE).state

    def _service_changed(self, name: str, state: str, moment: _dt.datetime) -> None:
        # Q174695: the MTA logs 9299 when it has stopped and 9298 when it has started, with its build;
        # a started MTA retries every connector at once.
        if name != MTA_SERVICE:
            return
        if state == STOPPED:
            self.log(9299, moment, self.mta_version, self.mta_build)
        elif state == RUNNING:
            self.log(9298, moment, self.mta_version, self.mta_build)
            self.restarts += 1
            self.retry_at.clear()

    def mta_name(self) -> str:
        entry = self.directory.entries.get(self.mta_key)
        return ((entry.get("MTA-Local-Desig") if entry else None) or self.name)

    def links(self) -> List[Link]:
        """This server's connectors: X.400 links of the site whose Home-MTA is this server's MTA."""
        found = [Link(self.name, e) for e in self.directory.homed_on(self.mta_key)]
        return sorted(found, key=lambda link: link.key)

    def stack_x500(self) -> str:
        """The transport stack's DN as 9301 names it (Q193380: /o=Org/ou=Site/cn=Configuration/
        cn=Servers/cn=LocalMTA/cn=TCP (LocalMTA), case as in the directory)."""
        return "".join(f"/{kind}={value}" for kind, value in reversed(self.stack_dn))

    def log(self, event_id: int, moment: _dt.datetime, *strings: Any) -> None:
        """Log ``event_id`` with its insertion strings (the message is formatted from them)."""
        kind, category, _template = EVENTS[event_id]
        values = [str(v) for v in strings]
        self._append({"id": event_id, "time": _iso(self.clock(moment)), "type": kind, "category": category,
                      "source": MTA_SERVICE, "message": format_message(event_id, values), "strings": values})

    def replay(self, recorded: Mapping[str, Any], moment: _dt.datetime) -> None:
        """A recorded entry (topology ``event_log``), kept exactly as recorded."""
        entry = {"id": recorded["id"], "time": _iso(self.clock(moment)), "type": recorded["type"],
                 "category": recorded["category"], "source": recorded["source"], "message": recorded["message"],
                 "strings": list(recorded.get("strings") or []), "recorded": True}
        self._append(entry)

    def clock(self, moment: _dt.datetime) -> _dt.datetime:
        """The server's clock when the lab's reads ``moment``."""
        return moment + self.clock_offset

    def _append(self, entry: Dict[str, Any]) -> None:
        entry["record"] = self.next_record
        self.events.append(entry)
        self.next_record += 1
        if len(self.events) > EVENT_LOG_CAP:
            del self.events[: len(self.events) - EVENT_LOG_CAP]

    def served(self, event: Mapping[str, Any]) -> Dict[str, Any]:
        """An event as EventLogEntry shows it: without the message DLL only the insertion strings
        survive, in .NET's "description ... cannot be found" text (recorded entries stay as recorded)."""
        out = {k: v for k, v in event.items() if k != "recorded"}
        if not self.messages_formatted and not event.get("recorded"):
            out["message"] = message_not_formatted(event["id"], event["source"], event["strings"])
        return out

    def lookup(self, address: str, lab: "Lab") -> Optional[str]:
        """This server's reverse lookup of ``address`` (hosts file / DNS PTR): the topology's
        ``reverse_lookup`` entry when there is one (null: the lookup fails), else the name of the lab
        host at that address (its fqdn, else its NetBIOS name), else None."""
        for key, name in self.reverse_lookup.items():
            if _ip(key) == _ip(address):
                return name
        host = lab._server_at(address)
        if host is not None:
            return host.fqdn or host.name
        return None
