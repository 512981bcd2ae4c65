"""xcon_mta_service: query, start or restart MSExchangeMTA; never restarts in check mode."""

from __future__ import annotations

from xcon import gather
from xcon.action import XconAction
from xcon.ops import OpFailed
from xcon.specs import MTA_SERVICE


class ActionModule(XconAction):
    ARGUMENT_SPEC = MTA_SERVICE

    def xcon_run(self, args, task_vars):
        server = self.server_name(args, task_vars)
        client = self.winrm_client(task_vars, args.get("management_host"))
        want = args["state"]
        query = {"id": "svc", "op": "service", "params": {"server": server, "name": args["name"], "action": "query"}}
        current = self._one(client, query)
        needs = want == "restarted" or (want == "started" and current.get("state") != "Running")
        if not needs or self._task.check_mode:
            return {"service": current, "changed": needs, "winrm_commands": 1}
        action = "restart"
        done = self._one(client, {"id": "svc", "op": "service", "params": {"server": server, "name": args["name"], "action": action}})
        if args.get("restart_marker"):
            import os

            if os.path.exists(args["restart_marker"]):
                os.unlink(args["restart_marker"])
        return {"service": done, "changed": True, "winrm_commands": 2, "ansible_facts": {"xcon_restart_pending": False}}

    @staticmethod
    def _one(client, op):
        result = gather.run(client, [op])["svc"]
        if not result.ok:
            raise OpFailed(result.error_category, result.hresult, result.message)
        return result.data
