"""The lab process's control requests (``status``, ``advance``, ``snapshot``, ``firewall``,
``fault``, ``stats``, ``shutdown``; see control.py) as methods of :class:`control.LabProcess`."""
from __future__ import annotations

import datetime as _dt
import os
import time
from typing import Any, Dict, List, Optional

# CLI fault kind -> (WsmanServer fault name, name of its one argument or None, argument type)
FAULT_KINDS = {
    "drop-after": ("drop_after", "n", int),
    "operation-timeout": ("operation_timeout", "n", int),
    "slow": ("slow", "seconds", float),
    "refuse-credentials": ("refuse_credentials", None, None),
}


class ControlError(Exception):
    """A control request that cannot be carried out; its text goes back to the CLI."""


def iso_time(value: Any) -> Optional[str]:
    """A model time (datetime or text) as ISO-8601 UTC text."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


class ControlRequests:
    """Control requests of :class:`control.LabProcess` (state: ``lab``, ``wsman``, ``kdc``, ``ports``,
    ``endpoints``, ``stop_event``, ``started_at``)."""

    def emulated_time(self) -> Optional[str]:
        now = getattr(self.lab, "now", None)
        if callable(now):
            now = now()
        if now is None:
            now = self.lab.snapshot().get("time")
        return iso_time(now)

    # ---- control requests -----------------------------------------------------------------
    def dispatch(self, name: str, body: Dict[str, Any]) -> Any:
        if name == "status":
            return self.status()
        if name == "advance":
            try:
                minutes = int(body.get("minutes"))
            except (TypeError, ValueError):
                raise ControlError("advance: MINUTES must be a whole number") from None
            if minutes < 0:
                raise ControlError("advance: MINUTES must not be negative")
            self.lab.advance(minutes)
            return {"minutes": minutes, "time": self.emulated_time()}
        if name == "snapshot":
            return self.lab.snapshot()
        if name == "firewall":
            record = body.get("record")
            if not isinstance(record, dict):
                raise ControlError("firewall apply: the change record must be a JSON object")
            return self.lab.firewall_apply(record)
        if name == "admin":
            record = body.get("record")
            if not isinstance(record, dict):
                raise ControlError("admin apply: the change record must be a JSON object")
            return self.lab.admin_apply(record)
        if name == "fault":
            return self.fault(str(body.get("server", "")), str(body.get("kind", "")), body.get("args") or [])
        if name == "stats":
            return self.wsman.stats()
        if name == "shutdown":
            self.stop_event.set()
            return {"stopping": True, "pid": os.getpid()}
        raise ControlError(f"unknown control request '{name}'")

    def status(self) -> Dict[str, Any]:
        return {
            "pid": os.getpid(),
            "topology": self.topology_path,
            "inventory": self.inventory_path,
            "state_dir": self.state_dir,
            "ca_path": self.ca_path,
            "time": self.emulated_time(),
            "time_scale": self.time_scale,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "endpoints": [{"name": ep["name"], "scheme": ep.get("scheme", "http"), "host": "127.0.0.1",
                           "port": ep["port"], "auth": list(ep.get("auth") or []), "fqdn": ep.get("fqdn"),
                           "serves": list(ep.get("serves") or [ep["name"]])} for ep in self.endpoints],
            "kerberos": None if self.kdc is None else {
                "realm": self.kdc.realm, "kdc": f"127.0.0.1:{self.kdc.port}", "krb5_config": self.kdc.krb5_conf},
        }

    def fault(self, server: str, kind: str, args: List[Any]) -> Dict[str, Any]:
        if server not in self.ports:
            raise ControlError(f"fault: no emulated host '{server}' (hosts: {', '.join(sorted(self.ports))})")
        if kind == "clear":
            self.wsman.clear_faults(server)
            return {"server": server, "fault": "clear"}
        if kind not in FAULT_KINDS:
            raise ControlError(f"fault: unknown kind '{kind}' (kinds: {', '.join(FAULT_KINDS)}, clear)")
        fault_name, arg_name, arg_type = FAULT_KINDS[kind]
        kwargs = {}
        if arg_name is not None:
            if len(args) != 1:
                raise ControlError(f"fault {kind} takes one argument ({arg_name})")
            try:
                value = arg_type(args[0])
            except (TypeError, ValueError):
                raise ControlError(f"fault {kind}: '{args[0]}' is not a {arg_type.__name__}") from None
            if value < 0:
                raise ControlError(f"fault {kind}: {arg_name} must not be negative")
            kwargs[arg_name] = value
        elif args:
            raise ControlError(f"fault {kind} takes no argument")
        self.wsman.set_fault(server, fault_name, **kwargs)
        return {"server": server, "fault": kind, "args": kwargs}
