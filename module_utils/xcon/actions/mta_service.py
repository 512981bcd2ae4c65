"""xcon_mta_service: query, start or restart the MTA service (the profile's, MSExchangeMTA on 5.5);
never restarts in check mode."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from xcon import fleet_fork
from xcon import gather
from xcon import inputs
from xcon import state as xstate
from xcon.action import XconAction
from xcon.ops import raise_first_failure
from xcon.specs import MTA_SERVICE


# A server whose process (xcon.fleet_fork) ended before it answered: its restart marker stays.
LOST = ("the process restarting this server's MTA ended before it answered ({why}): whether the MTA was "
        "restarted is unknown; the restart stays pending for the re-run.")
LEFT_PENDING = "left_pending"  # a server's outcome in its share: restart pending and not allowed


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
        # One share of the fleet per core (xcon.fleet_fork): the restart marker stays until a restart
        # is answered, so a process lost mid-share leaves its servers' restarts pending for the re-run.
        outcomes = fleet_fork.run_fleet(hosts, lambda share, threads, child: self._share(args, task_vars, share, threads, child),
                                        self.fleet_threads(), lost=LOST)
        out, left_pending = {}, []
        for host in hosts:
            ok, result = outcomes[host]
            if not ok:   # its restart failed, or its process ended before it answered
                result = self._failure(host, result, 1)
            if result == LEFT_PENDING:
                left_pending.append(host)
            elif result is not None:
                out[host] = result
        return {"hosts": out, "fleet": hosts, "changed": any(r.get("changed") for r in out.values()), "left_pending": left_pending,
                "failed_hosts": {h: r["msg"] for h, r in out.items() if r.get("failed")},
                "winrm_commands": sum(r.get("winrm_commands", 0) for r in out.values())}

    def _share(self, args, task_vars, hosts, threads, child):
        """{host: (True, result | LEFT_PENDING | None) | (False, exception) | DEFER} of `hosts`: each
        host's settings resolved by this thread (templating is not thread-safe), its restart handed
        to `threads` threads as soon as they are (None: no restart pending, or check mode).  In a
        forked process (`child`) a host whose client would kinit is DEFERred to the worker."""
        outcomes = {}

        def jobs():
            for host in hosts:
                view = self.host_view(task_vars, host)
                marker = os.path.join(args["restart_marker_dir"], host) if args.get("restart_marker_dir") else None
                if not (inputs.as_bool(self.host_var(view, "xcon_restart_pending", False)) or xstate.restart_pending(marker)):
                    outcomes[host] = (True, None)
                elif inputs.as_bool(self.role_or_contract(view, "xcon_mta_restart_allowed", "xcon_allow_mta_restart", True)) is False:
                    outcomes[host] = (True, LEFT_PENDING)
                elif self._task.check_mode:
                    outcomes[host] = (True, None)
                else:
                    own = dict(args, fleet=None, server=None, management_host=None, restart_marker=marker,
                               name=self.host_var(view, "xcon_mta_restart_service") or args["name"],
                               exchange_version=str(self.role_or_contract(view, "xcon_mta_restart_exchange_version",
                                                                           "xcon_exchange_version", "5.5")))
                    try:
                        client = self.winrm_client(view, None, task_vars)
                        query, restart = self._ops(own, self.server_name(own, view))
                    except Exception as exc:  # noqa: BLE001 - this host's settings are wrong: not restarted
                        outcomes[host] = (True, self._failure(host, exc, 0))
                        continue
                    if child and not fleet_fork.forkable(client):
                        outcomes[host] = fleet_fork.DEFER
                        continue
                    yield host, self._restart, (own, client, query, restart)

        outcomes.update(fleet_fork.thread_outcomes(jobs(), threads))
        return outcomes

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
