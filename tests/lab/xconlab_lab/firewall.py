"""The lab's firewall change records as methods of :class:`model.Lab`: its state as a record shows
it and applying a change record (docs/design.md)."""
from __future__ import annotations

import copy
from typing import Any, Dict, Mapping

from .base import FirewallRecordError, _ip


class FirewallMixin:
    """Firewall state and change records of :class:`model.Lab` (state: ``firewalls``, ``servers``)."""

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
