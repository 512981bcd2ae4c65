"""xcon_connector_info: read a server's X.400 connectors (and its MTA evidence) in one command."""

from __future__ import annotations

import datetime as _dt

from ansible.errors import AnsibleActionFail

from xcon import directory_route
from xcon import gather
from xcon.errors import ACCESS_DENIED, XconSecondHop as SecondHop, error_code, error_reason, second_hop_reason
from xcon import state as xstate
from xcon.mask import mask
from xcon.ops import raise_first_failure
from xcon.specs import CONNECTOR_INFO
from xcon.action import XconAction


class ActionModule(XconAction):
    ARGUMENT_SPEC = CONNECTOR_INFO

    def xcon_run(self, args, task_vars):
        server = self.server_name(args, task_vars)
        profile = gather.get_profile(args["exchange_version"])
        ldap_port, organization = self.ldap_port(args, task_vars), self.organization(args, task_vars)
        site = self.site(args, task_vars)
        # Which directory holds this server's connectors (xcon.directory_route): its own LDAP on 5.5
        # and 5.0 (searches only, no RootDSE), another server's replica for 4.0 (no LDAP at all).
        route = directory_route.read_source(task_vars.get("inventory_hostname"), self.exchange_servers(task_vars))
        result = {"server": server, "winrm_commands": 0, "ldap_port": ldap_port, "directory": route}
        if route.get("host") is None:
            if args["fail_on_error"]:
                raise AnsibleActionFail(f"{server}: {route['reason']}")
            result["xcon_error"] = {"code": gather.NO_DIRECTORY, "reason": route["reason"]}
            return self._to_file(args, result)
        ops = gather.audit_ops(server, profile, ldap_port, organization, args["check_write_access"],
                               args.get("evidence_window_minutes"), site=site, directory=route["own"],
                               with_root=route["version"] == "5.5")
        client = None
        try:
            client = self.winrm_client(task_vars, args.get("management_host"))
            result["winrm_commands"] = 1
            results = gather.run(client, ops)
            if not route["own"]:
                # the replica's server, through its own endpoint: a second command
                dir_client, dir_server, dir_port = self.directory_endpoint(task_vars, route["host"])
                results.update(gather.run(dir_client, gather.audit_directory_ops(
                    dir_server, profile, dir_port, organization, args["check_write_access"], route["version"] == "5.5", site)))
                result["winrm_commands"] = 2
                ldap_port = dir_port
            wrong = gather.directory_problem(results.get("directory"), organization, ldap_port, server)
            code = gather.WRONG_DIRECTORY
            if not wrong:
                wrong, code = gather.search_capped(results.get("connectors"), profile), gather.SEARCH_CAPPED
            if wrong:
                # Never "no connectors found", nor a list that may be short: the link is unknown,
                # and the report says why.
                result["xcon_error"] = {"code": code, "reason": wrong}
                if args["fail_on_error"]:
                    raise AnsibleActionFail(f"{server}: {wrong}")
                return self._to_file(args, result)
            raise_first_failure({k: r for k, r in results.items() if k != "mta_port"})
        except Exception as exc:  # report, don't abort, when asked to
            through = self._management_host(args, task_vars, server)
            explicit = getattr(client, "target_credentials", None)   # denied as that account: not the hop
            if through and not explicit and error_code(exc) == ACCESS_DENIED:
                exc = SecondHop(second_hop_reason(server, through, error_reason(exc)))
            if args["fail_on_error"]:
                raise exc
            result["xcon_error"] = {"code": error_code(exc), "reason": error_reason(exc)}
            return self._to_file(args, result)
        through = self._management_host(args, task_vars, server)
        if through and gather.anonymous_read(results["connectors"], profile):
            exc = SecondHop(second_hop_reason(server, through, "the directory returned the connectors' names "
                                              "but none of their attributes"))
            if args["fail_on_error"]:
                raise exc
            result["xcon_error"] = {"code": error_code(exc), "reason": error_reason(exc)}
            return self._to_file(args, result)
        result["connectors"] = gather.decode_connectors(results["connectors"], server, profile, args.get("names"))
        result["mta_port"] = gather.mta_port(results.get("mta_port"))
        if gather.mta_port_error(results.get("mta_port")):
            result["mta_port_error"] = gather.mta_port_error(results.get("mta_port"))
        if args["check_write_access"]:
            result["write_access"] = gather.write_access(results["connectors"], profile)
        if args.get("evidence_window_minutes"):
            not_before = xstate.evidence_baseline(args.get("evidence_baseline_file"), server)
            result["evidence"] = gather.queues_by_connector(
                gather.decode_evidence(results, server, args["evidence_window_minutes"], not_before),
                result["connectors"], profile)
        raw = [mask(e) for e in results["connectors"].data.get("entries", [])]
        if args["include_raw"]:
            result["raw"] = raw
        if args.get("save_raw_to"):
            saved = {
                "server": server,
                "inventory_host": task_vars.get("inventory_hostname"),
                "exchange_version": args["exchange_version"],
                "ldap_port": ldap_port,
                "organization": organization,
                "directory": route,
                "saved_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "raw": raw,
                "results": {k: gather.saved_result(r, mask) for k, r in results.items()},
            }
            xstate.write_json_atomic(args["save_raw_to"], saved, mode=0o600, checksum=True)
        return self._to_file(args, result)

    def _management_host(self, args, task_vars, server):
        """The other host this server is read through (its management host), or None."""
        through = args.get("management_host") or self.host_var(task_vars, "xcon_management_host")
        here = task_vars.get("inventory_hostname")
        if not through or str(through).lower() in (str(here).lower(), str(server).lower()):
            return None
        return through

    @staticmethod
    def _to_file(args, result):
        """With result_file: the full result goes to the file, a summary is returned."""
        if not args.get("result_file"):
            return result
        xstate.write_json_atomic(args["result_file"], mask(result), mode=0o600)
        short = {k: result[k] for k in ("server", "winrm_commands", "xcon_error") if k in result}
        short["result_file"] = args["result_file"]
        if "connectors" in result:
            evidence = result.get("evidence") or {}
            short["summary"] = {"connectors": len(result["connectors"]), "events": len(evidence.get("events") or []),
                                "queued": sum((evidence.get("queues") or {}).values())}
        return short
