"""xcon_firewall_facts: a firewall's passers, routed paths and transparency through its driver."""

from __future__ import annotations

from xcon import firewall as fw
from xcon.action import XconAction
from xcon.specs import FIREWALL_FACTS


class ActionModule(XconAction):
    ARGUMENT_SPEC = FIREWALL_FACTS

    def xcon_run(self, args, task_vars):
        name = args["name"] or task_vars.get("inventory_hostname")
        if args["driver"] == "nftables":
            # The gateway's own table is the truth; the declaration only names the sides.
            facts = fw.facts_with_state(name, args["declared"], args.get("state_file"), driver="nftables")
            facts["source"] = "nftables-record"
        else:
            facts = fw.facts_with_state(name, args["declared"], args.get("state_file"))
        return {"firewall": facts}
