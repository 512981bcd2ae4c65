"""The lab's network as methods of :class:`model.Lab`: zones, name resolution, the firewall's routed
paths and service passers (GSPs), connections and tcp_probe."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from .base import LISTENING_PORTS, X400_PORT, _ip
from .servers import Server


class NetworkMixin:
    """Network of :class:`model.Lab` (state: ``servers``, ``firewalls``, ``topology``)."""

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
        index = getattr(self, "_address_index", None)   # during a step of the model (mta.advance)
        if index is not None:
            return index["servers"].get(target)
        for server in self.servers.values():
            if _ip(server.address) == target:
                return server
        return None

    def _address_indexes(self) -> Dict[str, Dict[Any, Any]]:
        """Who owns each address, as _server_at and _firewall_at find it (the first in their order):
        built for each step of the model, in which no address changes; scanning every server and
        firewall for each association grew with the square of the lab."""
        servers: Dict[Any, Server] = {}
        for server in self.servers.values():
            servers.setdefault(_ip(server.address), server)
        firewalls: Dict[Any, Tuple[str, str]] = {}
        for name, fw in self.firewalls.items():
            for side in ("internal", "external"):
                firewalls.setdefault(_ip(fw["interfaces"][side]), (name, side))
            for passer in fw["passers"]:
                if passer.get("address"):
                    firewalls.setdefault(_ip(passer["address"]), (name, passer["interface"]))
        return {"servers": servers, "firewalls": firewalls}

    @staticmethod
    def _listen_address(fw: Mapping[str, Any], passer: Mapping[str, Any]) -> str:
        return passer.get("address") or fw["interfaces"][passer["interface"]]

    def _firewall_at(self, address: str) -> Optional[Tuple[str, str]]:
        """(firewall, interface) owning an address (interface or passer alias), else None."""
        target = _ip(address)
        index = getattr(self, "_address_index", None)   # during a step of the model (mta.advance)
        if index is not None:
            return index["firewalls"].get(target)
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
