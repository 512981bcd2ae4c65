"""xcon_mta_evidence: an MTA's events, queues and service state in one command."""

from __future__ import annotations

from xcon import gather
from xcon.action import XconAction
from xcon.specs import MTA_EVIDENCE


class ActionModule(XconAction):
    ARGUMENT_SPEC = MTA_EVIDENCE

    def xcon_run(self, args, task_vars):
        server = self.server_name(args, task_vars)
        client = self.winrm_client(task_vars, args.get("management_host"))
        evidence = gather.read_evidence(client, server, args["exchange_version"], args["window_minutes"])
        if args.get("connectors"):
            wanted = {n.lower() for n in args["connectors"]}
            evidence["queues"] = {k: v for k, v in evidence.get("queues", {}).items() if k.lower() in wanted}
        return {"evidence": evidence, "winrm_commands": 1}
