"""xcon_mta_service: query, start or restart the MTA service (the profile's, MSExchangeMTA on 5.5);
never restarts in check mode."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from xcon import gather
from xcon import inputs
from xcon import state as xstate
from xcon.action import XconAction
from xcon.ops import raise_first_failure
from xcon.specs import MTA_SERVICE


class ActionModule(XconAction):
    ARGUMENT_SPEC = MTA_SERVICE

    def xcon_run(self, args, task_vars):
        if args.get("fleet") is not None:
            return self._fleet(args, task_vars)
        server = self.server_name(args, task_vars)
        client = self.winrm_client(task_vars, args.get("management_host"))
        want = args["state"]
        query, restart = self._ops(args, server)
        if want == "restarted" and not self._task.check_mode:
            return self._restart(args, client, query, restart)
        current = self._one(client, query)
        needs = want == "restarted" or (want == "started" and current.get("state") != "Running")
        if not needs or self._task.check_mode:
            return {"service": current, "changed": needs, "winrm_commands": 1}
        return self._restarted(args, self._one(client, restart), 2)  # started, and it was not running

    @staticmethod
    def _ops(args, server):
        """The service's query and its restart (the profile's MTA service unless `name` is given)."""
        name = args["name"] or gather.get_profile(args["exchange_version"])["service"]
        query = {"id": "svc", "op": "service", "params": {"server": server, "name": name, "action": "query"}}
        restart = {"id": "restart", "op": "service",
                   "params": dict(query["params"], action="restart", timeout_sec=args["timeout"])}
        return query, restart

    def _restart(self, args, client, query, restart):
        # A restart needs no decision: the query and the restart travel as one command (the runner
        # stops at the query's failure, so a service it cannot read is not touched).
        results = raise_first_failure(gather.run(client, [query, restart]))
        return self._restarted(args, results["restart"].data, 1)

    # -- the fleet: every server of the play that needs its restart, from this one task ---------------
    def _fleet(self, args, task_vars):
        """Restart the MTA of every host of `fleet` whose restart is pending (its fact
        xcon_restart_pending, or its marker <restart_marker_dir>/<host>) and allowed (its
        xcon_mta_restart_allowed, else xcon_allow_mta_restart, else true), each in its own thread
        with its own connection variables, service and Exchange version.  One host's failure is its
        own: ``hosts[host]`` carries ``failed`` and ``msg``; ``failed_hosts`` names them with their
        reason and ``left_pending`` the servers not allowed to restart.  Never restarts in check mode."""
        if args["state"] != "restarted":
            raise AnsibleActionFail("fleet is for state=restarted")
        hosts = [str(h) for h in args["fleet"]]
        jobs, out, left_pending = {}, {}, []
        pool = self.fleet_pool(len(hosts))
        try:
            for host in hosts:  # settings resolved here (templating is not thread-safe), the wire in the pool
                view = self.host_view(task_vars, host)
                marker = os.path.join(args["restart_marker_dir"], host) if args.get("restart_marker_dir") else None
                if not (inputs.as_bool(self.host_var(view, "xcon_restart_pending", False)) or xstate.restart_pending(marker)):
                    continue
                if inputs.as_bool(self.role_or_contract(view, "xcon_mta_restart_allowed", "xcon_allow_mta_restart", True)) is False:
                    left_pending.append(host)
                    continue
                if self._task.check_mode:
                    continue
                own = dict(args, fleet=None, server=None, management_host=None, restart_marker=marker,
                           name=self.host_var(view, "xcon_mta_restart_service") or args["name"],
                           exchange_version=str(self.role_or_contract(view, "xcon_mta_restart_exchange_version",
                                                                       "xcon_exchange_version", "5.5")))
                try:
                    client = self.winrm_client(view, None, task_vars)
                    query, restart = self._ops(own, self.server_name(own, view))
                except Exception as exc:  # noqa: BLE001 - this host's settings are wrong: not restarted
                    out[host] = self._failure(host, exc, 0)
                    continue
                jobs[host] = pool.submit(self._restart, own, client, query, restart)
            for host, future in jobs.items():
                try:
                    out[host] = future.result()
                except Exception as exc:  # noqa: BLE001 - one server's failure does not hide the others'
                    out[host] = self._failure(host, exc, 1)
        finally:
            pool.shutdown(wait=True)
        return {"hosts": out, "fleet": hosts, "changed": any(r.get("changed") for r in out.values()), "left_pending": left_pending,
                "failed_hosts": {h: r["msg"] for h, r in out.items() if r.get("failed")},
                "winrm_commands": sum(r.get("winrm_commands", 0) for r in out.values())}

    def _failure(self, host, exc, commands):
        return dict(self.failure(host, exc), changed=False, winrm_commands=commands)

    @staticmethod
    def _restarted(args, service, commands):
        """The restart's outcome: done when the service was stopped and runs again with every
        dependent that ran before; otherwise failed, saying what is still not running."""
        result = {"service": service, "changed": True, "winrm_commands": commands}
        if service.get("restarted", True):
            xstate.clear_restart(args.get("restart_marker"))
            result["ansible_facts"] = {"xcon_restart_pending": False}
        problem = restart_problem(service)
        if problem:
            result.update(failed=True, msg=problem)
        return result

    @staticmethod
    def _one(client, op):
        return gather.run(client, [op])[op["id"]].raise_for_error()


def restart_problem(service):
    """Why a restart answer is not a complete restart (None when it is)."""
    name = service.get("name") or "the service"
    parts = []
    if service.get("not_running"):
        parts.append(f"still not running: {', '.join(service['not_running'])}")
    if not service.get("restarted", True):
        parts.append(f"{name} was not restarted")
    if not parts:
        return None
    if service.get("timed_out"):
        parts.append(f"timed out waiting for: {', '.join(service['timed_out'])}")
    if service.get("error"):
        parts.append(service["error"])
    return f"restart of {name} incomplete: " + "; ".join(parts)
