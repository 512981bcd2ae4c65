"""The lab's model: Exchange 5.5 directories, event logs, MTA queues/counters/service, the MTAs'
behaviour and the firewall, in which KB Q196381 really happens (docs/design.md "Lab internal
Python API"; shared/spec/lab.md).

Public API::

    lab = Lab.from_file(path) / Lab.from_dict(data, source="<file>")   # TopologyError
    lab.endpoints() -> [{"name", "scheme", "port", "auth", "users": {user: {"password", "rights"}}, "serves"}]
    lab.execute_op(endpoint_name, username, op, params) -> data          # OpError(category, hresult, message)
    lab.advance(minutes); lab.snapshot() -> dict; lab.firewall_apply(record) -> dict
    lab.now() -> ISO time; lab.time_scale; lab.lock (threading.RLock guarding all state)

The MTA model, run once per emulated minute in a fixed order (servers and connectors sorted by
name), is deterministic:

1. queued mail on a connector that is gone, now scheduled Never, or whose remote MTA changed goes
   back to the server's work queue;
2. traffic (fractional per-minute rates accumulate) creates messages; route selection (Q193322)
   among the sender's connectors whose remote MTA is the destination: skip Never; active now
   (Always, or Selected with the current slot set) before Selected-but-idle before Remote
   initiated; then lowest cost; then name. No route: the message waits in the work queue;
3. a connector with queued mail, active now and past its retry time opens an association to its
   Stack address (``N-Address``); see :meth:`Lab._connect` for the network path (direct, routed
   path, GSP relay and the source address the callee sees);
4. the callee accepts only if the source address equals the IP Stack address of one of its
   connectors, or, failing that, the name its reverse lookup gives (``Server.lookup``) is a host-name
   Stack address (any schedule but Never; Q193380, Q189345). Never-only match: 37 and 1293 on the
   callee (Q169716); no match: 1293 on the callee, with the 9301s its build logs (``event_9301_mode``:
   at the address miss and after the failed lookup before build 2354, none for 2354-2620, only after
   the failed lookup from 2621; Q193380, Q234962, Q189345); any failure: 1290/289/1294 on the caller,
   which retries after
   Open-Retry-Interval seconds. On success the caller delivers all its mail for that MTA and, when
   two-way alternate is on on both connectors, the callee hands back all its mail for the caller
   (the KB's bursts);
5. 659/660 when a connector queue reaches ``backlog_threshold`` / falls to half of it (666/667 for
   the work queue).

Activation-Schedule as documented (PR_EMS_AB_ACTIVATION_SCHEDULE): 84 bytes, one byte per two hours,
high bit first, from Sunday 00:00 GMT; the emulated clock is GMT (``schema.slot_active``).

Changes to the directory and the firewall take effect at the next emulated minute (the GWART is
rebuilt automatically); an MTA restart additionally clears every connector's retry timer.
"""
from __future__ import annotations

import copy
import datetime as _dt
import ipaddress
import re
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import schema, topology as topology_mod
from .directory import Directory, Entry
from .schema import DirectoryError
from .topology import TopologyError  # noqa: F401  (re-exported: Lab.from_* raise it)

SEP = "\u00a7"                    # Connected-Domains field separator (byte 0xA7)
MTA_SERVICE = "MSExchangeMTA"
OTHER_SERVICES = ("MSExchangeDS", "MSExchangeIS", "MSExchangeSA")
X400_PORT = 102
EVENT_LOG_CAP = 50000
HISTORY_CAP = 10080               # per flow: minutes with deliveries kept (one week)
LISTENING_PORTS = (135, 445)     # besides the MTA's port, LDAP and WinRM
MTA_PARAMETERS_KEY = "SYSTEM\\CurrentControlSet\\Services\\MSExchangeMTA\\Parameters"
# LDAP_CAP_ACTIVE_DIRECTORY_OID: a RootDSE whose supportedCapabilities lists it is Active Directory.
AD_CAPABILITY = "1.2.840.113556.1.4.800"
ISO = "%Y-%m-%dT%H:%M:%SZ"

# -- events --------------------------------------------------------------------------------------
# The lab's copy of the MTA's message file: per event id its type, category and message format with
# insertion strings %1..%n, written from the texts the KB articles quote (docs/facts.md "MTA events";
# the article is named per row). The lab logs insertion strings, as the MTA does, and formats the
# message when it is read; which insertion string holds which value is documented only for 9301
# (Q256844: %1 the transport stack, %2 the address); elsewhere the lab numbers them in the order the
# sentence shows them (ASSUMED).
EVENTS: Dict[int, Tuple[str, str, str]] = {
    # Q196381, Q169716
    1290: ("Warning", "X.400 Service",
           "A locally initiated association to %1 was refused. The failure reason provider was %2 and the reason "
           "was %3. Control block index %4. Type %5. [PLATFORM KERNEL 20 130] (12)"),
    289: ("Warning", "X.400 Service", "A connection to %1 could not be opened. [MTA XFER-IN 17 26] (12)"),
    1294: ("Warning", "X.400 Service",
           "An association with entity %1 ended abnormally. [198 1 0 1 PLATFORM KERNEL 20 130] (10)"),
    # Q196381, Q169716, Q194031
    1293: ("Warning", "X.400 Service",
           "A remotely-initiated association from %1 was refused. The failure reason provider is %2 and the reason "
           "is %3. Control block index %4. Type %5. [PLATFORM KERNEL 26 128] (12)"),
    # Q193380, Q189345, Q256844, Q169113
    9301: ("Information", "Configuration",
           "The message transfer gateway that uses the network address %2 and the transport stack %1 could not be "
           "found. Check the configuration of the mail gateway. [BASE IL TCP/IP DRVR 8 218] (10)"),
    # Q169716
    37: ("Warning", "Security",
         "The %1 (Adjacent-MTA) entity attempted to open an association while suspended. [MTA XFER-IN 22 35] (14)"),
    # Q163085
    659: ("Warning", "Resource", "The queue for %1 is backlogged with %2 messages in the queue. [MTA GATEWAY 45 512] (14)"),
    660: ("Warning", "Resource",
          "The queue backlog for %1 has subsided leaving %2 messages in the queue. [MTA GATEWAY 45 512] (14)"),
    666: ("Warning", "Resource", "The MTA work queue is backlogged with %1 messages in the queue. [MTA SUBMIT 18 231] (14)"),
    667: ("Warning", "Resource",
          "The MTA work queue backlog has subsided leaving %1 messages in the queue. [MTA DISP:RESULT 23 234] (14)"),
    # Q146397, Q174695, Q193049
    9298: ("Information", "X.400 Service",
           "Microsoft Exchange Server MTA Service startup complete, version %1 (build %2). [BASE IL MAIN BASE 31 490] (14)"),
    9299: ("Information", "X.400 Service",
           "Service closedown complete, version %1 (build %2). [BASE IL MAIN BASE 31 490] (16)"),
}
# What .NET's EventLogEntry.Message returns when the source's message DLL cannot be loaded (the op
# reads the log with System.Diagnostics.EventLog): the resource string MessageNotFormatted with the
# entry's event identifier and source, then every insertion string quoted, comma-separated. The
# MTA's identifiers are taken to carry no qualifier bits, so the number is the event id (ASSUMED).
MESSAGE_NOT_FORMATTED = ("The description for Event ID '{id}' in Source '{source}' cannot be found.  The local "
                         "computer may not have the necessary registry information or message DLL files to display "
                         "the message, or you may not have permission to access them.  The following information "
                         "is part of the event:")
# MTA builds (Q163294) and what each logs as 9301 (docs/facts.md): before the Q189345 fix a 9301 at
# every address miss and a second one when the reverse lookup fails too (Q193380); builds 2354-2620
# (5.5 SP2 is 2448.1) log none (Q234962); 2621 and later only the one after the failed lookup.
DEFAULT_BUILDS = {"4.0": ("4", "996.72"), "5.0": ("5.0", "1460.13"), "5.5": ("5.5", "2653.23")}


def format_message(event_id: int, strings: List[str]) -> str:
    """The message the MTA's message file gives for ``event_id`` with these insertion strings."""
    return re.sub(r"%(\d+)", lambda m: strings[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(strings)
                  else m.group(0), EVENTS[event_id][2])


def message_not_formatted(event_id: int, source: str, strings: List[str]) -> str:
    return MESSAGE_NOT_FORMATTED.format(id=event_id, source=source) + ", ".join(f"'{s}'" for s in strings)


def event_9301_mode(build: str) -> str:
    """"every_miss" (builds before 2354), "none" (2354-2620, Q234962), "after_lookup" (2621 on)."""
    number = int(str(build).split(".")[0])
    if number < 2354:
        return "every_miss"
    return "none" if number <= 2620 else "after_lookup"


def address_hex(address: str) -> str:
    """9301's address field: an IP address as its octets in hex (Q193380: 145.245.193.27 is 91F5C11B),
    a name as the hex of its ASCII text (52656d6f74654d5441 is RemoteMTA)."""
    literal = _ip(address)
    if literal is not None:
        return literal.packed.hex().upper()
    return address.encode("ascii").hex().upper()


ANONYMOUS = "anonymous"            # rights of an anonymous logon at a managed server (second hop)


class OpError(Exception):
    """An op failed: ADSI-style category, HRESULT (``0x8007....``) and message."""

    def __init__(self, category: str, hresult: str, message: str) -> None:
        super().__init__(message)
        self.category, self.hresult, self.message = category, hresult, message


class FirewallRecordError(ValueError):
    """A firewall change record that cannot be applied (nothing was changed)."""


def _op_error(category: str, message: str, hresult: Optional[str] = None) -> OpError:
    return OpError(category, hresult or schema.HRESULTS[category], message)


def _iso(moment: _dt.datetime) -> str:
    return moment.strftime(ISO)


def _ip(text: str) -> Optional[ipaddress._BaseAddress]:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


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
        self.state = "Running"
        self.restarts = 0
        self.associations = {"outbound_ok": 0, "outbound_failed": 0, "inbound_ok": 0, "inbound_refused": 0}

    def mta_name(self) -> str:
        entry = self.directory.find(self.mta_dn)
        return ((entry.get("MTA-Local-Desig") if entry else None) or self.name)

    def links(self) -> List[Link]:
        """This server's connectors: X.400 links of the site whose Home-MTA is this server's MTA."""
        key = schema.dn_key(self.mta_dn)
        found = [Link(self.name, e) for e in self.directory.of_class("X400-Link")
                 if e.get("Home-MTA") is not None and schema.dn_key(e.get("Home-MTA")) == key]
        return sorted(found, key=lambda link: link.key)

    def stack_x500(self) -> str:
        """The transport stack's DN as 9301 names it (Q193380: /o=Org/ou=Site/cn=Configuration/
        cn=Servers/cn=LocalMTA/cn=TCP (LocalMTA), case as in the directory)."""
        return "".join(f"/{kind}={value}" for kind, value in reversed(self.stack_dn))

    def log(self, event_id: int, moment: _dt.datetime, *strings: Any) -> None:
        """Log ``event_id`` with its insertion strings (the message is formatted from them)."""
        kind, category, _template = EVENTS[event_id]
        values = [str(v) for v in strings]
        self._append({"id": event_id, "time": _iso(moment), "type": kind, "category": category,
                      "source": MTA_SERVICE, "message": format_message(event_id, values), "strings": values})

    def replay(self, recorded: Mapping[str, Any], moment: _dt.datetime) -> None:
        """A recorded entry (topology ``event_log``), kept exactly as recorded."""
        entry = {"id": recorded["id"], "time": _iso(moment), "type": recorded["type"],
                 "category": recorded["category"], "source": recorded["source"], "message": recorded["message"],
                 "strings": list(recorded.get("strings") or []), "recorded": True}
        self._append(entry)

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


class Lab:
    """The whole emulated lab (thread-safe: every public method holds ``self.lock``)."""

    def __init__(self, topo: Dict[str, Any], source: str = "<topology>") -> None:
        self.lock = threading.RLock()
        self.source = source
        self.topology = topo
        self.organization = topo["organization"]
        self.time_scale = topo["time_scale"]
        self.threshold = topo["backlog_threshold"]
        self.start = _dt.datetime.strptime(topo["start_time"], ISO)
        self.time = self.start
        self.minute = 0
        self.directories: Dict[str, Directory] = {}
        self.servers: Dict[str, Server] = {}
        self.firewalls: Dict[str, Dict[str, Any]] = {}
        self.traffic = [dict(t, carry=0.0) for t in topo["traffic"]]
        self.flows: Dict[Tuple[str, str], Dict[str, Any]] = {}
        for t in self.traffic:
            self._flow(t["from"], t["to"])
        self._build()

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str) -> "Lab":
        return cls(topology_mod.load(path), source=path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<topology>") -> "Lab":
        return cls(topology_mod.validate(copy.deepcopy(data), source=source), source=source)

    def _build(self) -> None:
        org = self.organization
        for name, spec in self.topology["servers"].items():
            site_key = spec["site"].casefold()
            directory = self.directories.get(site_key)
            if directory is None:
                directory = Directory(org, spec["site"])
                self.directories[site_key] = directory
                root = (("o", org),)
                site = (("ou", spec["site"]),) + root
                config = (("cn", "Configuration"),) + site
                if directory.find(root) is None:
                    directory.add(root, "Organization", {})
                directory.add(site, "Organizational-Unit", {})
                directory.add(config, "Container", {})
                directory.add((("cn", "Connections"),) + config, "Container", {})
                directory.add((("cn", "Servers"),) + config, "Container", {})
            server = Server(name, spec, directory, org)
            self.servers[name] = server
            directory.add(server.server_dn, "Computer", {"Computer-Name": name, "Admin-Display-Name": name})
            directory.add(server.mta_dn, "MTA", {"MTA-Local-Desig": name})
            directory.add(server.stack_dn, "RFC1006-Stack", {})
        for name, spec in self.topology["servers"].items():
            server = self.servers[name]
            for conn in spec["connectors"]:
                dn = (("cn", conn["name"]),) + server.connections_dn
                server.directory.add(dn, "RFC1006-X400-Link", self._connector_attributes(server, conn))
                count = spec["queued"].get(conn["name"], 0)
                server.queues[conn["name"].casefold()] = {"name": conn["name"], "dest": conn["remote_mta"],
                                                          "count": count}
                if count:
                    self._flow(name, conn["remote_mta"])["sent"] += count
        for name, spec in self.topology["servers"].items():
            # a recorded Application log, replayed as it was recorded (minutes_ago before start_time)
            recorded = sorted(enumerate(spec.get("event_log") or []), key=lambda e: (-e[1]["minutes_ago"], e[0]))
            for _index, entry in recorded:
                self.servers[name].replay(entry, self.start - _dt.timedelta(minutes=entry["minutes_ago"]))
        for name, spec in self.topology["firewalls"].items():
            state = copy.deepcopy({k: v for k, v in spec.items() if k != "documented"})
            state["name"] = name
            self.firewalls[name] = state

    def _connector_attributes(self, server: Server, conn: Mapping[str, Any]) -> Dict[str, Any]:
        peer_site = conn["connected_site"]
        style = {"never": 0, "selected": 1, "always": 2, "remote": 3}[conn["schedule"]]
        grid = conn.get("schedule_grid")
        if grid is None:
            slots = [s for s in range(672) if s % 4 == 0] if style == 1 else []
            grid = schema.grid_from_slots(slots).hex()
        attrs: Dict[str, Any] = dict(schema.CONNECTOR_DEFAULTS)
        attrs.update({
            "cn": conn["display_name"],                 # Display-Name (the name is rdn, from the DN)
            "Admin-Display-Name": conn["display_name"],
            "Delivery-Mechanism": 3,
            "Home-MTA": schema.format_dn(server.mta_dn),
            "Supporting-Stack": [schema.format_dn(server.stack_dn)],
            "Activation-Style": style,
            "Activation-Schedule": grid,
            "Two-Way-Alternate-Facility": conn["two_way_alternate"],
            "N-Address": conn["stack_address"].encode("ascii").hex(),
            "N-Address-Type": 1 if conn["address_type"] == "ip" else 0,
            "Gateway-Local-Desig": conn["remote_mta"],
            "Connected-Domains": [SEP.join([self.organization, peer_site, str(conn["cost"]),
                                            f"X400:c=US;a= ;p={self.organization};o={peer_site};"])],
            "Open-Retry-Interval": conn["open_retry_interval"],
        })
        if conn["remote_password"]:
            attrs["Gateway-Local-Cred"] = conn["remote_password"]
        if conn["routing_list"]:
            attrs["Routing-List"] = list(conn["routing_list"])
        if conn["local_mta_name"]:
            attrs["MTA-Local-Desig"] = conn["local_mta_name"]
        if conn["local_mta_password"]:
            attrs["MTA-Local-Cred"] = conn["local_mta_password"]
        return attrs

    def _flow(self, src: str, dst: str) -> Dict[str, Any]:
        flow = self.flows.get((src, dst))
        if flow is None:
            flow = {"sent": 0, "delivered": 0, "peak_queued": 0, "history": {}}
            self.flows[(src, dst)] = flow
        return flow

    # -- endpoints -----------------------------------------------------------------------------
    def endpoints(self) -> List[Dict[str, Any]]:
        with self.lock:
            out = []
            for name, spec in self.topology["servers"].items():
                if spec.get("winrm"):
                    out.append(self._endpoint(name, spec["winrm"], [name], self.fqdn(name)))
            for name, host in self.topology["management_hosts"].items():
                out.append(self._endpoint(name, host["winrm"], list(host["manages"]), self.fqdn(name)))
            return out

    @staticmethod
    def _endpoint(name: str, winrm: Mapping[str, Any], serves: List[str], fqdn: str) -> Dict[str, Any]:
        users = {winrm["username"]: {"password": winrm["password"], "rights": winrm["rights"]}}
        for user in winrm.get("extra_users") or []:
            users[user["username"]] = {"password": user["password"], "rights": user["rights"]}
        return {"name": name, "scheme": winrm["scheme"], "port": winrm["port"], "auth": list(winrm["auth"]),
                "users": users, "serves": serves, "fqdn": fqdn, "codepage": winrm.get("codepage", 1252),
                "dotnet35": winrm.get("dotnet35", True)}

    def host_has_dotnet35(self, endpoint_name: str) -> bool:
        """Whether the Windows host behind a WinRM endpoint has .NET Framework 3.5."""
        with self.lock:
            found = self._endpoint_spec(endpoint_name)
            return True if found is None else bool(found[0].get("dotnet35", True))

    # -- the domain ----------------------------------------------------------------------------
    # The site's Windows domain is the organisation's name (its accounts are ORG\user); its
    # Kerberos realm and DNS domain are the lab's: ORG.EXAMPLE / org.example.
    @property
    def netbios_domain(self) -> str:
        return str(self.organization).upper()

    @property
    def realm(self) -> str:
        from .kdc import realm_for

        return realm_for(self.netbios_domain)

    def fqdn(self, host: str) -> str:
        """A WinRM host's DNS name (its Kerberos service principal is HTTP/<fqdn>)."""
        spec = self.topology["servers"].get(host) or self.topology["management_hosts"].get(host) or {}
        return (spec.get("fqdn") or f"{host}.{self.realm}").lower()

    def domain_accounts(self) -> Dict[str, Dict[str, str]]:
        """The domain's accounts (``DOMAIN\\user`` of every WinRM host, the first password and
        rights given for a name): ``{"user": {"password", "rights"}}``. Local accounts (no domain
        part, or another one) are not the domain's."""
        accounts: Dict[str, Dict[str, str]] = {}
        winrms = [s["winrm"] for s in self.topology["servers"].values() if s.get("winrm")]
        winrms += [h["winrm"] for h in self.topology["management_hosts"].values()]
        for winrm in winrms:
            users = [(winrm["username"], winrm["password"], winrm["rights"])]
            users += [(u["username"], u["password"], u["rights"]) for u in winrm.get("extra_users") or []]
            for login, password, rights in users:
                domain, _, user = login.rpartition("\\")
                if domain.upper() == self.netbios_domain and user.lower() not in accounts:
                    accounts[user.lower()] = {"password": password, "rights": rights}
        return accounts

    def _endpoint_spec(self, name: str) -> Optional[Tuple[Mapping[str, Any], List[str]]]:
        spec = self.topology["servers"].get(name)
        if spec is not None and spec.get("winrm"):
            return spec["winrm"], [name]
        host = self.topology["management_hosts"].get(name)
        if host is not None:
            return host["winrm"], list(host["manages"])
        return None

    def now(self) -> str:
        with self.lock:
            return _iso(self.time)

    # -- ops -----------------------------------------------------------------------------------
    # -- the second hop --------------------------------------------------------------------------
    # An op a management host runs against a server it manages (LDAP bind, remote event log,
    # remote counters, service control) leaves the host: it reaches the server with the identity
    # the WinRM logon left the host (shared/domain/real-world-facts.md, "The management host and
    # the second hop"). Basic and NTLM leave none: the server sees an anonymous logon. CredSSP (the
    # password) and Kerberos with a forwarded TGT carry the user. Explicit credentials for the
    # target (the op's ``target_user``/``target_password``: an LDAP bind with them, an IPC$
    # session for the rest) are checked against the domain's accounts.
    SECOND_HOP_OPS = ("dir_search", "dir_modify", "dir_create", "dir_delete", "dir_root", "event_query",
                      "perf_counters", "service", "reg_read")

    def _second_hop_rights(self, rights: str, logon: Any, params: Mapping[str, Any]) -> str:
        user, password = params.get("target_user"), params.get("target_password")
        if user:
            domain, _, name = str(user).rpartition("\\")
            account = self.domain_accounts().get(name.lower()) if domain.upper() in ("", self.netbios_domain) else None
            if account is None or account["password"] != password:
                raise _op_error("AccessDenied", "Logon failure: unknown user name or bad password.", "0x8007052E")
            return account["rights"]
        if logon is None or getattr(logon, "delegated", True):
            return rights               # delegated (or a direct call of the model without a logon)
        return ANONYMOUS

    def execute_op(self, endpoint_name: str, username: str, op: str, params: Any,
                   logon: Any = None) -> Dict[str, Any]:
        """Run one op of docs/design.md's catalogue as ``username`` on ``endpoint_name``; ``logon``
        (``wsman.Logon``) decides what reaches a managed server (see the second hop above)."""
        with self.lock:
            found = self._endpoint_spec(endpoint_name)
            if found is None:
                raise _op_error("InvalidParameter", f"unknown endpoint '{endpoint_name}'")
            winrm, serves = found
            rights = None
            users = [(winrm["username"], winrm["rights"])] + [(u["username"], u["rights"])
                                                              for u in winrm.get("extra_users") or []]
            for user, user_rights in users:
                if str(username).lower() == user.lower():
                    rights = user_rights
            if rights is None:
                raise _op_error("AccessDenied", f"Access is denied for '{username}'.")
            if not isinstance(params, Mapping):
                raise _op_error("InvalidParameter", "params must be an object")
            handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise _op_error("InvalidParameter", f"unknown op '{op}'")
            if endpoint_name in self.topology["management_hosts"] and op in self.SECOND_HOP_OPS:
                rights = self._second_hop_rights(rights, logon, params)
                if rights == ANONYMOUS and op in ("event_query", "perf_counters", "service", "reg_read"):
                    what = {"event_query": "the event log", "perf_counters": "the performance counters",
                            "service": "the service control manager", "reg_read": "the registry"}[op]
                    server = params.get("server") or ""
                    raise _op_error("AccessDenied", f"Access is denied. (opening {what} on '{server}' as "
                                    "NT AUTHORITY\\ANONYMOUS LOGON)", "0x80070005")
            try:
                return handler(endpoint_name, serves, rights, params)
            except DirectoryError as exc:
                raise OpError(exc.category, exc.hresult, exc.message) from None

    @staticmethod
    def _param(params: Mapping[str, Any], name: str, kind=str, required: bool = True, default: Any = None) -> Any:
        if name not in params or params[name] is None:
            if required:
                raise _op_error("InvalidParameter", f"missing parameter '{name}'")
            return default
        value = params[name]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise _op_error("InvalidParameter", f"parameter '{name}' must be an integer")
        if kind is str and not isinstance(value, str):
            raise _op_error("InvalidParameter", f"parameter '{name}' must be a string")
        if kind is list and not isinstance(value, list):
            raise _op_error("InvalidParameter", f"parameter '{name}' must be a list")
        return value

    def _served(self, serves: List[str], params: Mapping[str, Any], name: Optional[str] = None) -> Server:
        server = name if name is not None else self._param(params, "server")
        match = next((s for s in serves if s.lower() == str(server).lower()), None)
        if match is None:
            raise _op_error("ServerUnavailable", f"The server is not operational: '{server}' cannot be reached "
                            "from this host.")
        return self.servers[match]

    # -- LDAP: which directory answers on a server's port ---------------------------------------
    def _ldap(self, serves, params) -> Tuple[Server, Optional[Directory]]:
        """The server and the directory answering ``LDAP://SERVER[:port]``: its Exchange 5.5
        directory on ``ldap_port``; on a Windows 2000 domain controller Active Directory on 389
        (``None`` here: it holds no Exchange 5.5 objects); nothing elsewhere (ServerUnavailable)."""
        server = self._served(serves, params)
        port = params.get("port")
        if port is None or port == 0:
            port = 389
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _op_error("InvalidParameter", f"port must be 1..65535, not '{port}'")
        if port == server.ldap_port and not (server.domain_controller and port == 389):
            return server, server.directory
        if server.domain_controller and port == 389:
            return server, None
        raise _op_error("ServerUnavailable", f"The server is not operational. (LDAP://{server.name}:{port})")

    def _ad_root_dse(self, server: Server) -> Dict[str, Any]:
        """The RootDSE Active Directory serves (MS-ADTS rootDSE attributes): domain naming contexts
        under DC=..., defaultNamingContext, and the Active Directory capability OID."""
        domain = (server.fqdn or f"{server.name}.{self.organization}.example").split(".", 1)[-1]
        base = ",".join(f"DC={part}" for part in domain.split("."))
        return {"namingContexts": [base, f"CN=Configuration,{base}", f"CN=Schema,CN=Configuration,{base}",
                                   f"DC=DomainDnsZones,{base}"],
                "defaultNamingContext": base,
                "supportedCapabilities": [AD_CAPABILITY, "1.2.840.113556.1.4.1791"],
                "supportedLDAPVersion": ["3", "2"],
                "dnsHostName": server.fqdn or f"{server.name}.{domain}"}

    def _op_dir_root(self, _ep, serves, _rights, params):
        server, directory = self._ldap(serves, params)
        if directory is None:
            return self._ad_root_dse(server)
        # Exchange 5.5: the organisation is the one naming context; no AD capabilities.
        return {"namingContexts": [schema.format_dn(directory.root)], "defaultNamingContext": None,
                "supportedCapabilities": [], "supportedLDAPVersion": ["2", "3"], "dnsHostName": None}

    def _op_dir_search(self, _ep, serves, rights, params):
        server, directory = self._ldap(serves, params)
        base = self._param(params, "base", str, False, "")
        scope = self._param(params, "scope", str, False, "subtree")
        classes = self._param(params, "classes", list, False, [])
        if directory is None:
            # Active Directory: an empty base means its first naming context (no o=ORG there);
            # it has no object of the 5.5 classes, and no o=ORG tree.
            if base.strip() and not base.strip().upper().startswith("DC="):
                raise _op_error("NoSuchObject", f"There is no such object on the server: '{base}'.")
            return {"entries": []}
        entries = directory.search(base, scope, classes, self._param(params, "attributes", list, False, []), rights)
        resolve = self._param(params, "resolve", str, False, "")
        if resolve:
            for entry in entries:
                value = entry["attributes"].get(resolve)
                if not isinstance(value, str):
                    continue
                name = bytes.fromhex(value).decode("ascii", errors="replace").strip()
                if not name or _ip(name) is not None:
                    continue
                address = self._resolve(name)
                entry["resolved"] = {"name": name, "addresses": [address] if address else [],
                                     "error": None if address else "No such host is known"}
        return {"entries": entries}

    def _op_dir_modify(self, _ep, serves, rights, params):
        _server, directory = self._ldap(serves, params)
        dn = self._param(params, "dn")
        if directory is None:
            raise _op_error("NoSuchObject", f"There is no such object on the server: '{dn}'.")
        modified = directory.modify(dn, self._param(params, "changes", list), rights)
        return {"dn": dn, "modified": modified}

    def _op_dir_create(self, _ep, serves, rights, params):
        _server, directory = self._ldap(serves, params)
        attributes = self._param(params, "attributes", object, False, {})
        if not isinstance(attributes, Mapping):
            raise _op_error("InvalidParameter", "parameter 'attributes' must be an object")
        if directory is None:
            raise _op_error("NoSuchObject", f"There is no such object on the server: '{self._param(params, 'parent')}'.")
        dn = directory.create(self._param(params, "parent"), self._param(params, "cn"),
                              self._param(params, "class"), attributes, rights)
        return {"dn": dn}

    def _op_dir_delete(self, _ep, serves, rights, params):
        _server, directory = self._ldap(serves, params)
        if directory is None:
            raise _op_error("NoSuchObject", f"There is no such object on the server: '{self._param(params, 'dn')}'.")
        return {"dn": directory.delete(self._param(params, "dn"), rights)}

    def _op_reg_read(self, _ep, serves, _rights, params):
        server = self._served(serves, params)
        key = self._param(params, "key")
        names = self._param(params, "names", list, False, [])
        values = server.registry.get(key.replace("/", "\\").strip("\\").lower())
        found = values is not None
        return {"key": key, "found": found,
                "values": {str(n): (values or {}).get(str(n)) for n in names}}

    def _op_event_query(self, _ep, serves, _rights, params):
        server = self._served(serves, params)
        log = self._param(params, "log", str, False, "Application")
        source = self._param(params, "source", str, False, "")
        ids = self._param(params, "ids", list, False, [])
        since_text = self._param(params, "since", str, False, "")
        limit = self._param(params, "max", int, False, 1000)
        if log.lower() not in ("application", "system", "security"):
            raise _op_error("InvalidParameter", f"The event log '{log}' on computer '{server.name}' does not exist.")
        since = None
        if since_text:
            try:
                since = _dt.datetime.fromisoformat(since_text.replace("Z", "+00:00"))
            except ValueError:
                raise _op_error("InvalidParameter", f"since is not an ISO-8601 time: '{since_text}'") from None
            if since.tzinfo is not None:
                since = since.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        wanted = set()
        for value in ids:
            try:
                wanted.add(int(value))
            except (TypeError, ValueError):
                raise _op_error("InvalidParameter", f"event id '{value}' is not a number") from None
        found = []
        events = server.events if log.lower() == "application" else []
        for event in reversed(events):
            if len(found) >= max(0, limit):
                break
            if since is not None and _dt.datetime.strptime(event["time"], ISO) < since:
                break
            if source and event["source"].lower() != source.lower():
                continue
            if wanted and event["id"] not in wanted:
                continue
            found.append(server.served(event))
        found.reverse()
        return {"now": _iso(self.time), "events": found}

    _COUNTER_PATH = re.compile(r"^(?:\\\\([^\\]+))?\\([^\\(]+)(?:\((.*)\))?\\([^\\]+)$")

    def _op_perf_counters(self, _ep, serves, _rights, params):
        default = self._param(params, "server")
        samples = []
        for path in self._param(params, "paths", list):
            match = self._COUNTER_PATH.match(path) if isinstance(path, str) else None
            if match is None:
                raise _op_error("InvalidParameter", f"not a counter path: '{path}'")
            machine, obj, instance, counter = match.groups()
            server = self._served(serves, params, machine or default)
            machine = machine or default
            if obj.lower() == "msexchangemta connections" and counter.lower() == "queue length":
                names = {link.key: link.name for link in server.links()}
                for key, queue in server.queues.items():
                    if queue["count"] and key not in names:
                        names[key] = queue["name"]
                if instance == "*":
                    chosen = sorted(names, key=lambda k: names[k].casefold())
                elif instance and instance.casefold() in names:
                    chosen = [instance.casefold()]
                else:
                    raise _op_error("InvalidParameter", f"Instance '{instance}' does not exist in the specified "
                                    "Category.")
                for key in chosen:
                    value = server.queues.get(key, {}).get("count", 0)
                    samples.append({"path": f"\\\\{machine}\\{obj}({names[key]})\\{counter}",
                                    "instance": names[key], "value": value})
            elif obj.lower() == "msexchangemta" and counter.lower() == "work queue length" and not instance:
                samples.append({"path": f"\\\\{machine}\\{obj}\\{counter}", "instance": None,
                                "value": sum(server.work.values())})
            else:
                raise _op_error("InvalidParameter", f"Counter '{counter}' of category '{obj}' does not exist on "
                                f"'{machine}'.")
        return {"samples": samples}

    def _op_service(self, _ep, serves, rights, params):
        server = self._served(serves, params)
        name = self._param(params, "name")
        action = self._param(params, "action", str, False, "query")
        if action not in ("query", "restart"):
            raise _op_error("InvalidParameter", f"action must be query or restart, not '{action}'")
        known = [MTA_SERVICE] + list(OTHER_SERVICES)
        canonical = next((s for s in known if s.lower() == name.lower()), None)
        if canonical is None:
            raise _op_error("ServiceError", f"service {name} on {server.name}: Service '{name}' was not found on "
                            f"computer '{server.name}'.", "0x80070424")
        state = server.state if canonical == MTA_SERVICE else "Running"
        if action == "restart":
            if rights != "admin":
                raise _op_error("AccessDenied", f"service {name} on {server.name}: Access is denied.")
            if canonical == MTA_SERVICE:
                self._restart_mta(server)
                state = server.state
            return {"name": canonical, "state": state, "restarted": True}
        return {"name": canonical, "state": state, "restarted": False}

    def _restart_mta(self, server: Server) -> None:
        # Q174695: the MTA logs 9299 when it stops and 9298 when it has started, with its build
        server.log(9299, self.time, server.mta_version, server.mta_build)
        server.state = "Running"
        server.restarts += 1
        server.retry_at.clear()
        server.log(9298, self.time, server.mta_version, server.mta_build)

    def _op_tcp_probe(self, endpoint, _serves, _rights, params):
        host = self._param(params, "host")
        port = self._param(params, "port", int)
        timeout = self._param(params, "timeout_ms", int, False, 3000)
        connected, error = self._probe(endpoint, host, port, timeout)
        return {"host": host, "port": port, "connected": connected, "error": error}

    # -- the network ---------------------------------------------------------------------------
    def _zone(self, host: str) -> Optional[str]:
        """The firewall a server (or management host) is inside of, None for the outside world."""
        if host in self.topology["management_hosts"]:
            host = self.topology["management_hosts"][host]["manages"][0]
        for name, fw in self.firewalls.items():
            if host in fw["inside"]:
                return name
        return None

    def _resolve(self, text: str, address_type: Optional[int] = None) -> Optional[str]:
        """A Stack address / host name -> an IP text (None: does not resolve). Names resolve via the
        servers' fqdn and NetBIOS names; with address type 1 (IP) only a literal IP resolves."""
        if text is None:
            return None
        literal = _ip(text.strip())
        if literal is not None:
            return str(literal)
        if address_type == 1:
            return None
        folded = text.strip().rstrip(".").lower()
        for server in self.servers.values():
            if folded == server.name.lower() or (server.fqdn and folded == server.fqdn.lower()):
                return server.address
        for name, host in self.topology["management_hosts"].items():
            if folded == name.lower() and host.get("address"):
                return host["address"]
        for fw in self.firewalls.values():
            for side, dns_name in (fw.get("interface_names") or {}).items():
                if folded == dns_name.lower():
                    return fw["interfaces"][side]
        return None

    def _server_at(self, address: str) -> Optional[Server]:
        target = _ip(address)
        for server in self.servers.values():
            if _ip(server.address) == target:
                return server
        return None

    @staticmethod
    def _listen_address(fw: Mapping[str, Any], passer: Mapping[str, Any]) -> str:
        return passer.get("address") or fw["interfaces"][passer["interface"]]

    def _firewall_at(self, address: str) -> Optional[Tuple[str, str]]:
        """(firewall, interface) owning an address (interface or passer alias), else None."""
        target = _ip(address)
        for name, fw in self.firewalls.items():
            for side in ("internal", "external"):
                if _ip(fw["interfaces"][side]) == target:
                    return name, side
            for passer in fw["passers"]:
                if passer.get("address") and _ip(passer["address"]) == target:
                    return name, passer["interface"]
        return None

    def _routed(self, fw: Mapping[str, Any], a: str, b: str, port: int) -> bool:
        return any(p["port"] == port and set(p["hosts"]) == {a, b} for p in fw["routed_paths"])

    def _gateway_address(self, fw: Mapping[str, Any], side: str, toward: str, port: int) -> str:
        """The firewall address a proxied connection appears to come from on ``side``: the address of
        the GSP on that side that relays back to the caller ``toward`` if there is one (so each
        alias pair is symmetric), else the interface address."""
        for passer in fw["passers"]:
            if passer["interface"] == side and passer["port"] == port and passer["target"] == toward:
                return self._listen_address(fw, passer)
        return fw["interfaces"][side]

    def _connect(self, caller: str, address: str, port: int = X400_PORT
                 ) -> Tuple[Optional[str], Optional[str], str]:
        """Open a TCP connection from server/host ``caller`` to IP ``address``:``port``.

        Returns (callee server or None, source address the callee sees, reason):

        * the address of a server: reached directly when both are in the same zone (no firewall
          between them) or when the one firewall between them has a routed path for that host pair
          and port; the callee sees the caller's real address;
        * an address of a firewall interface (or passer alias) with a GSP on that port: the
          internal side is reachable only from inside that firewall, the external side only from
          outside it; the GSP relays to its target. Outbound (caller inside) the callee sees the
          firewall's external (gateway) address; inbound it sees the caller's real address when
          client-side transparency is on, else the firewall's internal (gateway) address;
        * anything else: no connection.
        """
        caller_zone = self._zone(caller)
        caller_address = (self.servers[caller].address if caller in self.servers
                          else self.topology["management_hosts"][caller].get("address"))
        target = self._server_at(address)
        if target is not None:
            if target.name == caller:
                return None, None, "the address is the caller's own"
            target_zone = self._zone(target.name)
            if caller_zone == target_zone:
                return target.name, caller_address, "direct"
            if caller_zone is not None and target_zone is not None:
                return None, None, "two firewalls between the hosts"
            fw = self.firewalls[caller_zone or target_zone]
            if self._routed(fw, caller, target.name, port):
                return target.name, caller_address, "routed path"
            return None, None, "filtered by the firewall"
        owner = self._firewall_at(address)
        if owner is None:
            return None, None, "no host at that address"
        fw_name, side = owner
        fw = self.firewalls[fw_name]
        inside = caller_zone == fw_name
        if (side == "internal") != inside or (not inside and caller_zone is not None):
            return None, None, "the firewall interface is not reachable from the caller's side"
        passer = next((p for p in fw["passers"] if p["port"] == port and p["interface"] == side
                       and _ip(self._listen_address(fw, p)) == _ip(address)), None)
        if passer is None:
            return None, None, "no service passer listens there"
        if passer["target"] == caller:
            return None, None, "the passer relays back to the caller"
        if inside:
            source = self._gateway_address(fw, "external", caller, port)
        elif fw["client_transparency"]:
            source = caller_address
        else:
            source = self._gateway_address(fw, "internal", caller, port)
        return passer["target"], source, "service passer"

    def _probe(self, prober: str, host: str, port: int, timeout: int) -> Tuple[bool, Optional[str]]:
        """tcp_probe from a WinRM host (a server or a management host)."""
        address = self._resolve(host)
        if address is None:
            return False, "No such host is known"
        server = self._server_at(address)
        if server is not None:
            if server.name != prober:
                callee, _source, reason = self._connect(prober, address, port)
                if callee is None:
                    return False, f"timed out after {timeout} ms"
            listening = set(LISTENING_PORTS) | {server.ldap_port}
            if server.domain_controller:
                listening |= {389, 636, 3268}
            if server.state == "Running":
                listening.add(server.mta_port)
            winrm = server.spec.get("winrm")
            if winrm:
                listening.add(5986 if winrm["scheme"] == "https" else 5985)
            if port in listening:
                return True, None
            return False, ("No connection could be made because the target machine actively refused it "
                           f"{address}:{port}")
        if self._firewall_at(address) is not None:
            callee, _source, _reason = self._connect(prober, address, port)
            if callee is not None:
                return True, None
            return False, f"timed out after {timeout} ms"
        return False, f"timed out after {timeout} ms"

    # -- the MTA model -------------------------------------------------------------------------
    def advance(self, minutes: int) -> None:
        """Run the model for ``minutes`` emulated minutes (each minute: time += 1, then one step)."""
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
            raise ValueError("minutes must be a whole number >= 0")
        with self.lock:
            for _ in range(minutes):
                self.time += _dt.timedelta(minutes=1)
                self.minute += 1
                self._step()

    def _mta_server(self, mta_name: str) -> Optional[Server]:
        for server in self.servers.values():
            if server.mta_name().casefold() == mta_name:
                return server
        return None

    def _active(self, link: Link) -> bool:
        if link.style == 2:
            return True
        if link.style == 1:
            weekday = (self.time.weekday() + 1) % 7          # Sunday = 0
            return schema.slot_active(link.grid, schema.schedule_slot(weekday, self.time.hour, self.time.minute))
        return False

    def _route(self, server: Server, links: List[Link], dest: str) -> Optional[Link]:
        """Q193322: skip Never; active now, then Selected (idle), then Remote initiated; then cost."""
        candidates = []
        for link in links:
            target = self._mta_server(link.remote)
            if target is None or target.name != dest or link.style == 0:
                continue
            rank = 0 if self._active(link) else (1 if link.style == 1 else 2)
            candidates.append((rank, link.cost, link.key, link))
        return min(candidates, key=lambda c: c[:3])[3] if candidates else None

    def _enqueue(self, server: Server, links: List[Link], dest: str, count: int) -> None:
        link = self._route(server, links, dest)
        if link is None:
            server.work[dest] = server.work.get(dest, 0) + count
            return
        queue = server.queues.setdefault(link.key, {"name": link.name, "dest": dest, "count": 0})
        queue["count"] += count

    def _step(self) -> None:
        links = {name: server.links() for name, server in self.servers.items()}
        # 1. queues whose connector is gone / Never / repointed go back to the work queue
        for name in sorted(self.servers):
            server = self.servers[name]
            by_key = {link.key: link for link in links[name]}
            for key, queue in list(server.queues.items()):
                link = by_key.get(key)
                target = self._mta_server(link.remote) if link else None
                if link is None or link.style == 0 or target is None or target.name != queue["dest"]:
                    if queue["count"]:
                        server.work[queue["dest"]] = server.work.get(queue["dest"], 0) + queue["count"]
                    if link is None:
                        del server.queues[key]
                        server.backlogged.discard(key)
                    else:
                        queue["count"] = 0
                        if target is not None:
                            queue["dest"] = target.name
        # 2. new mail, then the work queue is routed again
        for flow in self.traffic:
            flow["carry"] += flow["per_minute"]
            count = int(flow["carry"] + 1e-9)
            if count:
                flow["carry"] -= count
                self._flow(flow["from"], flow["to"])["sent"] += count
                self._enqueue(self.servers[flow["from"]], links[flow["from"]], flow["to"], count)
        for name in sorted(self.servers):
            server = self.servers[name]
            for dest in sorted(server.work):
                count = server.work.pop(dest)
                if count:
                    self._enqueue(server, links[name], dest, count)
        # 3./4. associations
        for name in sorted(self.servers):
            server = self.servers[name]
            if server.state != "Running":
                continue
            for link in links[name]:
                queue = server.queues.get(link.key)
                if not queue or not queue["count"] or not self._active(link):
                    continue
                due = server.retry_at.get(link.key)
                if due is not None and due > self.time:
                    continue
                self._associate(server, link, links)
        # 5. thresholds, peaks, flow queue peaks
        self._thresholds(links)

    def _associate(self, caller: Server, link: Link, links: Dict[str, List[Link]]) -> None:
        callee_name, source, _reason = (None, None, "")
        address = self._resolve(link.address, link.address_type) if link.address else None
        if address is not None:
            # The MTA calls out on its own RFC1006 port (Q161931); a GSP relays a port unchanged.
            callee_name, source, _reason = self._connect(caller.name, address, caller.mta_port)
        callee = self.servers.get(callee_name) if callee_name else None
        # Nothing listens there unless the callee's MTA uses the same port (Q176466: "All MTAs must
        # use the same port number").
        if callee is None or callee.state != "Running" or callee.mta_port != caller.mta_port:
            self._refused(caller, link)
            return
        source_ip = _ip(source) if source else None
        caller_mta = caller.mta_name().casefold()
        # Q193380 / Q189345: the callee compares the caller's address with each connector's Stack
        # address; failing that it reverse-looks-up the address and compares the name.
        by_address = [c for c in links[callee.name]
                      if source_ip is not None and c.address and _ip(c.address.strip()) == source_ip]
        by_name: List[Link] = []
        name = None
        if not by_address and source_ip is not None:
            if callee.mode_9301 == "every_miss":
                callee.log(9301, self.time, callee.stack_x500(), address_hex(str(source_ip)))
            name = callee.lookup(str(source_ip), self)
            if name is not None:
                by_name = [c for c in links[callee.name]
                           if c.address and _ip(c.address.strip()) is None and c.address_type != 1
                           and (c.address.strip().rstrip(".").lower() == name.lower()
                                or _ip(self._resolve(c.address, c.address_type) or "") == source_ip)]
        matches = by_address or by_name
        usable = [c for c in matches if c.style != 0]
        if not usable:
            own = next((c for c in links[callee.name] if c.remote == caller_mta), None)
            if matches:
                # Q169716: the side whose connector is Never logs 37 and 1293 together
                callee.log(37, self.time, matches[0].x500)
                own = matches[0]
            elif callee.mode_9301 != "none" and source_ip is not None:
                callee.log(9301, self.time, callee.stack_x500(), address_hex(name or str(source_ip)))
            callee.log(1293, self.time, own.x500 if own else schema.x500_upper(callee.connections_dn), 0, 0, 1, 1)
            callee.associations["inbound_refused"] += 1
            self._refused(caller, link)
            return
        usable.sort(key=lambda c: (c.remote != caller_mta, c.key))
        matched = usable[0]
        if link.remote != callee.mta_name().casefold():
            # the association names another MTA than the one that answered
            callee.log(1293, self.time, matched.x500, 0, 0, 1, 1)
            callee.associations["inbound_refused"] += 1
            self._refused(caller, link)
            return
        caller.retry_at.pop(link.key, None)
        caller.associations["outbound_ok"] += 1
        callee.associations["inbound_ok"] += 1
        self._deliver(caller, callee)
        if link.twa and matched.twa:
            self._deliver(callee, caller)

    def _deliver(self, sender: Server, receiver: Server) -> None:
        delivered = 0
        for queue in sender.queues.values():
            if queue["dest"] == receiver.name and queue["count"]:
                delivered += queue["count"]
                queue["count"] = 0
        if delivered:
            flow = self._flow(sender.name, receiver.name)
            flow["delivered"] += delivered
            history = flow["history"]
            history[self.minute] = history.get(self.minute, 0) + delivered
            if len(history) > HISTORY_CAP:
                del history[min(history)]

    def _refused(self, caller: Server, link: Link) -> None:
        caller.log(1290, self.time, link.x500, 0, 0, 202, 1)
        caller.log(289, self.time, link.x500)
        caller.log(1294, self.time, link.x500)
        caller.associations["outbound_failed"] += 1
        caller.retry_at[link.key] = self.time + _dt.timedelta(seconds=link.retry)

    def _thresholds(self, links: Dict[str, List[Link]]) -> None:
        high, low = self.threshold, self.threshold // 2
        for name in sorted(self.servers):
            server = self.servers[name]
            dns = {link.key: link.x500 for link in links[name]}
            for key in sorted(server.queues):
                queue = server.queues[key]
                count = queue["count"]
                server.peaks[queue["name"]] = max(server.peaks.get(queue["name"], 0), count)
                dn = dns.get(key) or schema.x500_upper((("cn", queue["name"]),) + server.connections_dn)
                if count >= high and key not in server.backlogged:
                    server.backlogged.add(key)
                    server.log(659, self.time, dn, count)
                elif count <= low and key in server.backlogged:
                    server.backlogged.discard(key)
                    server.log(660, self.time, dn, count)
            work = sum(server.work.values())
            if work >= high and "*work*" not in server.backlogged:
                server.backlogged.add("*work*")
                server.log(666, self.time, work)
            elif work <= low and "*work*" in server.backlogged:
                server.backlogged.discard("*work*")
                server.log(667, self.time, work)
        for (src, dst), flow in self.flows.items():
            flow["peak_queued"] = max(flow["peak_queued"], self._queued(src, dst))

    def _queued(self, src: str, dst: str) -> int:
        server = self.servers[src]
        return server.work.get(dst, 0) + sum(q["count"] for q in server.queues.values() if q["dest"] == dst)

    # -- the firewall --------------------------------------------------------------------------
    def _firewall_state(self, name: str) -> Dict[str, Any]:
        fw = self.firewalls[name]
        return {"name": name, "product": fw["product"], "inside": list(fw["inside"]), "outside": list(fw["outside"]),
                "interfaces": dict(fw["interfaces"]), "passers": copy.deepcopy(fw["passers"]),
                "routed_paths": copy.deepcopy(fw["routed_paths"]), "client_transparency": fw["client_transparency"]}

    def firewall_apply(self, record: Mapping[str, Any]) -> Dict[str, Any]:
        """Apply a firewall change record (docs/design.md); idempotent per step, all steps are
        checked before any is applied. Returns the firewall state plus ``steps`` results."""
        with self.lock:
            if not isinstance(record, Mapping):
                raise FirewallRecordError("the change record must be an object")
            if record.get("version") != 1:
                raise FirewallRecordError(f"change record version must be 1, not {record.get('version')!r}")
            name = record.get("firewall")
            if name not in self.firewalls:
                raise FirewallRecordError(f"unknown firewall {name!r}; known: {', '.join(sorted(self.firewalls))}")
            steps = record.get("steps")
            if not isinstance(steps, list):
                raise FirewallRecordError("steps must be a list")
            fw = copy.deepcopy(self.firewalls[name])
            members = set(fw["inside"]) | set(fw["outside"])
            results = []
            for index, step in enumerate(steps):
                results.append({"action": (step or {}).get("action") if isinstance(step, Mapping) else None,
                                "result": self._apply_step(fw, members, step, f"steps[{index}]")})
            self.firewalls[name] = fw
            state = self._firewall_state(name)
            state["steps"] = results
            return state

    def _apply_step(self, fw: Dict[str, Any], members: set, step: Any, where: str) -> str:
        if not isinstance(step, Mapping):
            raise FirewallRecordError(f"{where}: a step must be an object")
        action = step.get("action")

        def port() -> int:
            value = step.get("port")
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise FirewallRecordError(f"{where}: port must be an integer 1..65535")
            return value

        if action in ("remove_passer", "add_passer"):
            number = port()
            interface = step.get("interface")
            if interface not in ("internal", "external"):
                raise FirewallRecordError(f"{where}: interface must be internal or external")
            target = step.get("target")
            if target not in members:
                raise FirewallRecordError(f"{where}: target must be a server on this firewall, not {target!r}")
            address = step.get("address")
            if address is not None and _ip(str(address)) is None:
                raise FirewallRecordError(f"{where}: address must be an IP address")

            def same(p):
                return (p["port"] == number and p["interface"] == interface and p["target"] == target
                        and (address is None or _ip(self._listen_address(fw, p)) == _ip(address)))
            present = [p for p in fw["passers"] if same(p)]
            if action == "remove_passer":
                if not present:
                    return "unchanged"
                fw["passers"] = [p for p in fw["passers"] if not same(p)]
                return "changed"
            if present:
                return "unchanged"
            new = {"port": number, "interface": interface, "target": target}
            if address is not None and _ip(address) != _ip(fw["interfaces"][interface]):
                new["address"] = str(_ip(address))
            listen = _ip(self._listen_address(fw, new))
            if any(p["port"] == number and _ip(self._listen_address(fw, p)) == listen for p in fw["passers"]):
                raise FirewallRecordError(f"{where}: another passer already listens on {listen} port {number}")
            fw["passers"].append(new)
            return "changed"
        if action in ("add_routed_path", "remove_routed_path"):
            number = port()
            hosts = step.get("hosts")
            if (not isinstance(hosts, list) or len(hosts) != 2 or len(set(hosts)) != 2
                    or any(h not in self.servers for h in hosts)):
                raise FirewallRecordError(f"{where}: hosts must be two different servers of the lab")
            present = [p for p in fw["routed_paths"] if p["port"] == number and set(p["hosts"]) == set(hosts)]
            if action == "remove_routed_path":
                if not present:
                    return "unchanged"
                fw["routed_paths"] = [p for p in fw["routed_paths"] if p not in present]
                return "changed"
            if present:
                return "unchanged"
            fw["routed_paths"].append({"hosts": list(hosts), "port": number})
            return "changed"
        if action == "set_transparency":
            value = step.get("value")
            if not isinstance(value, bool):
                raise FirewallRecordError(f"{where}: value must be true or false")
            if fw["client_transparency"] == value:
                return "unchanged"
            fw["client_transparency"] = value
            return "changed"
        raise FirewallRecordError(f"{where}: unknown action {action!r}")

    # -- snapshot ------------------------------------------------------------------------------
    def snapshot(self) -> Dict[str, Any]:
        """The whole state (shared/spec/lab.md "Snapshot") plus extras: per server ``site``,
        ``address``, ``work_queue``, ``queue_peaks``, ``associations``; per flow ``peak_queued`` and
        ``history`` (minutes with deliveries)."""
        with self.lock:
            servers = {}
            for name, server in self.servers.items():
                site_entries = [server.directory.entry_json(e) for e in server.directory.entries.values()]
                servers[name] = {
                    "site": server.site, "address": server.address, "fqdn": server.fqdn,
                    "directory": site_entries,
                    "queues": {q["name"]: q["count"] for _k, q in sorted(server.queues.items())},
                    "work_queue": sum(server.work.values()),
                    "queue_peaks": dict(sorted(server.peaks.items())),
                    "events": [dict(e) for e in server.events],
                    "service": {MTA_SERVICE: server.state, "restarts": server.restarts},
                    "associations": dict(server.associations),
                }
            firewalls = {}
            for name in self.firewalls:
                state = self._firewall_state(name)
                state.pop("name")
                firewalls[name] = state
            flows = []
            for (src, dst), flow in self.flows.items():
                history = [{"time": _iso(self.start + _dt.timedelta(minutes=m)), "minute": m, "delivered": n}
                           for m, n in sorted(flow["history"].items())]
                flows.append({"from": src, "to": dst, "sent": flow["sent"], "delivered": flow["delivered"],
                              "queued": self._queued(src, dst), "peak_queued": flow["peak_queued"],
                              "history": history})
            return {"time": _iso(self.time), "start": _iso(self.start), "minute": self.minute,
                    "servers": servers, "firewalls": firewalls, "flows": flows}
