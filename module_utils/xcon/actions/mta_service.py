"""xcon_mta_service: query, start or restart the MTA service (the profile's, MSExchangeMTA on 5.5);
never restarts in check mode."""

from __future__ import annotations

from xcon import gather
from xcon import state as xstate
from xcon.action import XconAction
from xcon.ops import raise_first_failure
from xcon.specs import MTA_SERVICE


class ActionModule(XconAction):
    ARGUMENT_SPEC = MTA_SERVICE

    def xcon_run(self, args, task_vars):
        server = self.server_name(args, task_vars)
        client = self.winrm_client(task_vars, args.get("management_host"))
        want = args["state"]
        name = args["name"] or gather.get_profile(args["exchange_version"])["service"]
        query = {"id": "svc", "op": "service", "params": {"server": server, "name": name, "action": "query"}}
        restart = {"id": "restart", "op": "service",
                   "params": dict(query["params"], action="restart", timeout_sec=args["timeout"])}
        if want == "restarted" and not self._task.check_mode:
            # A restart needs no decision: the query and the restart travel as one command (the
            # runner stops at the query's failure, so a service it cannot read is not touched).
            results = raise_first_failure(gather.run(client, [query, restart]))
            return self._restarted(args, results["restart"].data, 1)
        current = self._one(client, query)
        needs = want == "restarted" or (want == "started" and current.get("state") != "Running")
        if not needs or self._task.check_mode:
            return {"service": current, "changed": needs, "winrm_commands": 1}
        return self._restarted(args, self._one(client, restart), 2)  # started, and it was not running

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
