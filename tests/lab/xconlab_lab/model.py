"""The lab's model: Exchange 5.5 directories, event logs, MTA queues/counters/service, the MTAs'
behaviour and the firewall, in which KB Q196381 really happens (docs/design.md "Lab internal
Python API"; shared/spec/lab.md).

Public API::

    lab = Lab.from_file(path) / Lab.from_dict(data, source="<file>")   # TopologyError
    lab.endpoints() -> [{"name", "scheme", "port", "auth", "users": {user: {"password", "rights"}}, "serves"}]
    lab.execute_op(endpoint_name, username, op, params) -> data          # OpError(category, hresult, message)
    lab.advance(minutes); lab.snapshot() -> dict; lab.firewall_apply(record) -> dict
    lab.now() -> ISO time; lab.time_scale; lab.lock (threading.RLock guarding all state)

``Lab`` holds the state, construction, endpoints, the domain, ``execute_op`` and ``snapshot``; its
other parts live by concern in mixins: ``ops.py`` (the op handlers), ``network.py`` (zones, names,
connections, tcp_probe), ``mta.py`` (the MTA model below), ``firewall.py`` (change records).
``servers.py`` holds ``Server`` and ``Link``, ``events.py`` the MTA's events, ``base.py`` the shared
constants, ``OpError`` and helpers.

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
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import schema, topology as topology_mod
from .base import ANONYMOUS, ISO, MTA_SERVICE, SEP, _iso, _op_error
from .base import FirewallRecordError, OpError  # noqa: F401  (re-exported: the model's errors)
from .events import busy_log
from .second_hop import IPC_OPS, SecondHopMixin, anonymous_refusal
from .directory import Directory
from .firewall import FirewallMixin
from .mta import MtaMixin
from .network import NetworkMixin
from .ops import OpsMixin
from .replication import ReplicationMixin, replica_of
from .admin_program import AdminProgramMixin
from .schema import DirectoryError
from .servers import Server
from .topology import TopologyError  # noqa: F401  (re-exported: Lab.from_* raise it)

class Lab(OpsMixin, NetworkMixin, MtaMixin, FirewallMixin, SecondHopMixin, ReplicationMixin,
          AdminProgramMixin):
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
        self._init_replication(topo.get("replication") or {})
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
        # The organisation's directory as every server starts with it (``seed``); each server then
        # gets its own replica of it (replication.py), which its MTA reads and its LDAP serves.
        org = self.organization
        seed = Directory(org, None)
        for name, spec in self.topology["servers"].items():
            site_key = spec["site"].casefold()
            directory = seed
            if site_key not in self.directories:
                self.directories[site_key] = seed
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
        for server in self.servers.values():
            server.directory = replica_of(seed, server.site)
        for name, spec in self.topology["servers"].items():
            # a recorded Application log, replayed as it was recorded (minutes_ago before start_time),
            # among `event_log_size` entries of other sources spread over the week before start
            recorded = [(self.start - _dt.timedelta(minutes=e["minutes_ago"]), i, e)
                        for i, e in enumerate(spec.get("event_log") or [])]
            recorded += busy_log(self.start, spec.get("event_log_size", 0))
            for moment, _index, entry in sorted(recorded, key=lambda r: (r[0], r[1])):
                self.servers[name].replay(entry, moment)
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
                if op in IPC_OPS and params.get("target_user"):
                    self._ipc_session(endpoint_name, serves, params)
                rights = self._second_hop_rights(rights, logon, params)
                if rights == ANONYMOUS and op in IPC_OPS:
                    raise anonymous_refusal(op, params)
            try:
                return handler(endpoint_name, serves, rights, params)
            except DirectoryError as exc:
                raise OpError(exc.category, exc.hresult, exc.message) from None


    # -- snapshot ------------------------------------------------------------------------------
    def _service_states(self, server: Server) -> Dict[str, str]:
        """The MTA's state and those of the topology's ``services`` (the Exchange services the lab
        adds beside the MTA are not shown: they never change)."""
        states = server.services.snapshot(self.time)
        shown = [MTA_SERVICE] + [s["name"] for s in server.spec.get("services") or []]
        return {name: states[name] for name in shown}

    def snapshot(self) -> Dict[str, Any]:
        """The whole state (shared/spec/lab.md "Snapshot") plus extras: per server ``site``,
        ``address``, ``work_queue``, ``queue_peaks``, ``associations``; per flow ``peak_queued`` and
        ``history`` (minutes with deliveries)."""
        with self.lock:
            servers = {}
            for name, server in self.servers.items():
                # the replica's objects of the server's own site (other sites' are read-only copies)
                site_entries = [server.directory.entry_json(e) for e in server.directory.in_site(server.site)]
                servers[name] = {
                    "site": server.site, "address": server.address, "fqdn": server.fqdn,
                    "directory": site_entries,
                    "queues": {q["name"]: q["count"] for _k, q in sorted(server.queues.items())},
                    "work_queue": sum(server.work.values()),
                    "queue_peaks": dict(sorted(server.peaks.items())),
                    "events": [dict(e) for e in server.events],
                    "service": dict(self._service_states(server), restarts=server.restarts),
                    "event_log_reads": server.event_reads,
                    "associations": dict(server.associations),
                    "exchange": server.spec.get("exchange", "5.5"),
                    "ldap_writes": [dict(w) for w in server.ldap_writes],
                    "admin_changes": [dict(c) for c in server.admin_changes],
                    "replication": self.replication_state(server),
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
