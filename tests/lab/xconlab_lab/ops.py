"""The lab's op handlers (docs/design.md's catalogue): directory, registry, event log, performance
counters, service control and tcp_probe, as methods of :class:`model.Lab` (``Lab.execute_op``
checks the caller and dispatches to ``_op_<name>``)."""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import schema
from .base import AD_CAPABILITY, ISO, _ip, _iso, _op_error
from .directory import Directory
from .servers import Server
from .services import restart_compensating


class OpsMixin:
    """Op handlers of :class:`model.Lab` (state: ``servers``, ``time``, ``organization``)."""

    @staticmethod
    def _param(params: Mapping[str, Any], name: str, kind=str, required: bool = True, default: Any = None) -> Any:
        empty = isinstance(params.get(name), str) and not params[name].strip()
        if name not in params or params[name] is None or (required and empty):
            if required:   # runner.ps1's Get-XconParam -Required: missing, or empty text
                raise _op_error("InvalidParameter", f"parameter '{name}' is required")
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
    def _ldap(self, serves, params, op) -> Tuple[Server, Optional[Directory]]:
        """The server and the directory answering ``LDAP://SERVER[:port]``: its replica of the
        Exchange directory on ``ldap_port`` (what its version can do there: replication.py); on a
        Windows 2000 domain controller Active Directory on 389 (``None`` here: it holds no Exchange
        objects); nothing elsewhere (ServerUnavailable)."""
        server = self._served(serves, params)
        port = params.get("port")
        if port is None or port == 0:
            port = 389
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _op_error("InvalidParameter", f"port must be 1..65535, not '{port}'")
        if port == server.ldap_port and not (server.domain_controller and port == 389):
            self._ldap_answers(server, op, params)
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
        server, directory = self._ldap(serves, params, "dir_root")
        if directory is None:
            return self._ad_root_dse(server)
        # Exchange 5.5: the organisation is the one naming context; no AD capabilities.
        return {"namingContexts": [schema.format_dn(directory.root)], "defaultNamingContext": None,
                "supportedCapabilities": [], "supportedLDAPVersion": ["2", "3"], "dnsHostName": None}

    def _op_dir_search(self, _ep, serves, rights, params):
        server, directory = self._ldap(serves, params, "dir_search")
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
        if self._param(params, "page_size", int, False, 0) <= 0:
            # An unpaged search: the directory sends its first ldap_size_limit entries and
            # sizeLimitExceeded, and .NET's SearchResultCollection enumerator takes ADSI's 0x80072023
            # for the last row: the op answers a shorter list, no error. A paged search (the
            # paged-results control, PageSize) returns every entry.
            entries = entries[:server.spec.get("ldap_size_limit", 100)]
        multi = {str(n).lower() for n in self._param(params, "multi", list, False, [])}
        for entry in entries:
            # the script: byte[] values are octet strings (named in octets), written as hex; an
            # attribute is a list when named in multi or when it has more than one value
            attrs = entry["attributes"]
            entry["octets"] = [n for n in attrs if (schema.attribute(n) or schema.ATTRIBUTES["rdn"]).syntax == "octet"]
            for name, value in list(attrs.items()):
                if isinstance(value, list) and len(value) == 1 and name.lower() not in multi:
                    attrs[name] = value[0]
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
        server, directory = self._ldap(serves, params, "dir_modify")
        dn = self._param(params, "dn")
        if directory is None:
            raise _op_error("NoSuchObject", f"There is no such object on the server: '{dn}'.")
        self._check_own_site(server, dn)
        changes = [dict(c, values=self._as_sent(server, c.get("attribute"), c.get("values"), c.get("octets")))
                   if isinstance(c, Mapping) and "values" in c else c for c in self._param(params, "changes", list)]
        modified = directory.modify(dn, changes, rights)
        self._replicate(server, dn)
        return {"dn": dn, "modified": modified}

    def _op_dir_create(self, _ep, serves, rights, params):
        server, directory = self._ldap(serves, params, "dir_create")
        attributes = self._param(params, "attributes", object, False, {})
        if not isinstance(attributes, Mapping):
            raise _op_error("InvalidParameter", "parameter 'attributes' must be an object")
        if directory is None:
            raise _op_error("NoSuchObject", f"There is no such object on the server: '{self._param(params, 'parent')}'.")
        self._check_own_site(server, self._param(params, "parent"))
        typed = {str(n).lower() for n in self._param(params, "octets", list, False, [])}
        attributes = {n: self._as_sent(server, n, v, str(n).lower() in typed) for n, v in attributes.items()}
        dn = directory.create(self._param(params, "parent"), self._param(params, "cn"),
                              self._param(params, "class"), attributes, rights)
        self._replicate(server, dn)
        return {"dn": dn}

    @staticmethod
    def _as_sent(server: Server, name: Any, values: Any, typed: Any) -> Any:
        """What reaches the directory for an attribute's value(s). A value typed as an octet string
        (the script turns its hex text into byte[]) is that hex here. An untyped string for an
        octet-string attribute is converted through the schema when ADSI can read it (the runner
        before issue 18 looked the attribute up in LDAP://SERVER/schema); when it cannot
        (``adsi_schema: unavailable``) the string goes out as it is and the directory stores the
        text's bytes: hex text in N-Address, silently."""
        attr = schema.attribute(name) if isinstance(name, str) else None
        if typed or attr is None or attr.syntax != "octet" or server.spec.get("adsi_schema") != "unavailable":
            return values

        def text_bytes(value: Any) -> Any:
            return value.encode("latin-1", "replace").hex() if isinstance(value, str) else value

        return [text_bytes(v) for v in values] if isinstance(values, list) else text_bytes(values)

    def _op_dir_delete(self, _ep, serves, rights, params):
        server, directory = self._ldap(serves, params, "dir_delete")
        if directory is None:
            raise _op_error("NoSuchObject", f"There is no such object on the server: '{self._param(params, 'dn')}'.")
        self._check_own_site(server, self._param(params, "dn"))
        dn = directory.delete(self._param(params, "dn"), rights)
        self._replicate(server, dn)
        return {"dn": dn}

    def _op_reg_read(self, _ep, serves, _rights, params):
        server = self._served(serves, params)
        key = self._param(params, "key")
        names = self._param(params, "names", list, False, [])
        values = server.registry.get(key.replace("/", "\\").strip("\\").lower())
        found = values is not None
        return {"key": key, "found": found,
                "values": {str(n): (values or {}).get(str(n)) for n in names}}

    # `since`: an ISO-8601 UTC time, or an xs:duration before the server's now ("-PT120M"), as
    # op_event_query.ps1 reads it (System.Xml.XmlConvert.ToTimeSpan).
    _DURATION = re.compile(r"^-P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")

    def _since(self, text: str, now: _dt.datetime) -> _dt.datetime:
        relative = self._DURATION.match(text)
        if relative and text not in ("-P", "-PT"):
            days, hours, minutes, seconds = (int(g or 0) for g in relative.groups())
            return now - _dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        try:
            since = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _op_error("InvalidParameter", f"since is not an ISO-8601 time or duration: '{text}'") from None
        return since.astimezone(_dt.timezone.utc).replace(tzinfo=None) if since.tzinfo is not None else since

    def _op_event_query(self, _ep, serves, _rights, params):
        server = self._served(serves, params)
        log = self._param(params, "log", str, False, "Application")
        source = self._param(params, "source", str, False, "")
        ids = self._param(params, "ids", list, False, [])
        limit = self._param(params, "max", int, False, 1000)
        if log.lower() not in ("application", "system", "security"):
            raise _op_error("InvalidParameter", f"The event log '{log}' on computer '{server.name}' does not exist.")
        now = server.clock(self.time)          # the server's clock (NetRemoteTOD), not this host's
        since = self._since(self._param(params, "since"), now)
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
            server.event_reads += 1
            if _dt.datetime.strptime(event["time"], ISO) < since:
                break
            if source and event["source"].lower() != source.lower():
                continue
            if wanted and event["id"] not in wanted:
                continue
            found.append(server.served(event))
        found.reverse()
        return {"now": _iso(now), "since": _iso(since), "events": found}

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
        timeout = self._param(params, "timeout_sec", int, False, 300)
        if action not in ("query", "restart"):
            raise _op_error("InvalidParameter", f"action must be query or restart, not '{action}'")
        scm = server.services
        scm.begin(self.time)
        service = scm.get(name)
        if service is None:
            raise _op_error("ServiceError", f"service {name} on {server.name}: Service '{name}' was not found on "
                            f"computer '{server.name}'.", "0x80070424")
        if action == "query":
            return {"name": service.name, "state": scm.status(service.name), "restarted": False}
        if rights != "admin":
            raise _op_error("AccessDenied", f"service {name} on {server.name}: Access is denied.")
        return restart_compensating(scm, service.name, timeout)

    def _op_tcp_probe(self, endpoint, _serves, _rights, params):
        host = self._param(params, "host")
        port = self._param(params, "port", int)
        timeout = self._param(params, "timeout_ms", int, False, 3000)
        connected, error = self._probe(endpoint, host, port, timeout)
        return {"host": host, "port": port, "connected": connected, "error": error}
