"""xcon_firewall_facts: a firewall's passers, routed paths and transparency through its driver."""

from __future__ import annotations

from xcon import firewall as fw
from xcon.action import XconAction
from xcon.specs import FIREWALL_FACTS


class ActionModule(XconAction):
    ARGUMENT_SPEC = FIREWALL_FACTS

    def xcon_run(self, args, task_vars):
        name = args["name"] or task_vars.get("inventory_hostname")
        try:
            if args["driver"] == "nftables":
                # The gateway's own table is the truth; the declaration only names the sides.
                facts = fw.facts_with_state(name, args["declared"], args.get("state_file"), driver="nftables")
                facts["source"] = "nftables-record"
            else:
                facts = fw.facts_with_state(name, args["declared"], args.get("state_file"))
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            # Not a failed task: the run goes on to write its report, where this firewall's links are
            # unknown (XCON-FIREWALL-UNKNOWN) and unchanged; the run then fails on this host.
            reason = f"the {args['driver']} driver could not read {name} ({exc.__class__.__name__}: {exc})"
            return {"firewall": {"name": name, "driver": args["driver"], "error": reason}, "unreadable": reason}
        return {"firewall": facts}
