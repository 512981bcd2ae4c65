"""xcon_verify: prove by observation that mail flows again on every changed link.

Per poll, one WinRM command per involved server reads its MTA evidence; a link passes when the
outside server's queue for the link is empty and no refusal (1290/289/1294 outside, 1293
inside) is newer than the change plus the settle time.  Against the lab, waiting advances the
emulated clock (`xconlab advance`) instead of sleeping.
"""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display

from xcon import gather
from xcon import state as xstate
from xcon.action import XconAction
from xcon.specs import VERIFY

display = Display()

OUTSIDE_REFUSALS = ("1290", "289", "1294")
# 1293 is the inside MTA's refusal. A 9301 alone is not one: MTAs before the KB Q189345 fix log it
# even when the reverse lookup then finds the connector and the association is accepted.
INSIDE_REFUSALS = ("1293",)


class ActionModule(XconAction):
    ARGUMENT_SPEC = VERIFY

    def xcon_run(self, args, task_vars):
        # Verify every link that was changed, and every link that is not ok although nothing was
        # left to change (a run interrupted after its changes: the re-run proves the result).
        changed_ids = {c.get("link") for c in args["plan"]}
        links = [l for l in args["links"]
                 if l["id"] in changed_ids or (l.get("status") in ("error", "warning") and not l.get("plan_error"))]
        if not links:
            return {"verification": {}}
        hosts = {}
        for link in links:
            for side in ("inside", "outside"):
                hosts[link[side]["host"]] = None
        inventory = {self._inventory_host(task_vars, name): name for name in hosts}

        def read(inv_host, window):
            server = self.host_var(task_vars, "xcon_server_name", host=inv_host) or inv_host
            version = str(self.host_var(task_vars, "xcon_exchange_version", "5.5", host=inv_host))
            endpoint = self.host_var(task_vars, "xcon_management_host", host=inv_host) or inv_host
            client = gather.client_for(self.connection_for(task_vars, endpoint))
            client.target_credentials = self.target_credentials(task_vars, endpoint, host=inv_host)
            return gather.read_evidence(client, server, version, window)

        unreadable = {}

        def read_all(window):
            # A server that cannot be read fails its links' verification (with the reason), not
            # the whole verification: the other links are still judged and the report is written.
            evidence = {}
            with ThreadPoolExecutor(max_workers=min(16, len(inventory))) as pool:
                futures = {h: pool.submit(read, h, window) for h in inventory}
                for host, future in futures.items():
                    try:
                        evidence[inventory[host]] = future.result()
                        unreadable.pop(inventory[host], None)
                    except Exception as exc:  # noqa: BLE001 - any failure to read is "could not read"
                        unreadable[inventory[host]] = f"{inventory[host]} could not be read: {exc}"
            return evidence

        self.last_now = {}
        baseline = read_all(1)
        started = {name: ev["now"] for name, ev in baseline.items()}
        timeout, poll, settle = args["timeout_minutes"], max(1, args["poll_minutes"]), args["settle_minutes"]
        waited = 0
        states = {}
        blind = 0  # consecutive polls in which every pending link had a server that could not be read
        while True:
            if waited >= timeout:
                break
            step = min(poll, timeout - waited)
            self._wait(args["lab_control"], step)
            waited += step
            evidence = read_all(waited + 1)
            self.last_now = {name: ev["now"] for name, ev in evidence.items()}
            for name, ev in evidence.items():
                started.setdefault(name, ev["now"])
            states = {link["id"]: self._judge(link, evidence, started, settle, unreadable) for link in links}
            pending = [i for i, s in states.items() if s["state"] != "passed"]
            display.display(
                f"xcon_verify: {waited}/{timeout} min: "
                + ", ".join(f"{i} queue={s['details']['outside_queue']} new_refusals={s['details']['new_refusals']}" for i, s in states.items())
            )
            if not pending and waited >= settle:
                break
            blind = blind + 1 if pending and all(states[i]["details"].get("unreadable") for i in pending) else 0
            if blind >= 2:
                break  # waiting longer proves nothing about links whose servers do not answer
        for state in states.values():
            state["details"]["minutes_waited"] = waited
            if state["state"] != "passed":
                state["state"] = "failed"
        ok = all(s["state"] == "passed" for s in states.values())
        if args.get("state_dir") and states:
            # Evidence older than a verified change describes a configuration that no longer runs:
            # later audits start their evidence window here (per server, on the server's clock).
            passed_hosts = {link[side]["host"] for link in links if states[link["id"]]["state"] == "passed" for side in ("inside", "outside")}
            xstate.record_baseline(os.path.join(args["state_dir"], xstate.BASELINE_FILE),
                                   {h: self.last_now.get(h) for h in passed_hosts if self.last_now.get(h)})
        return {"verification": states, "passed": ok, "minutes_waited": waited}

    def _inventory_host(self, task_vars, server):
        for host in task_vars.get("groups", {}).get("xcon_exchange", []):
            if (self.host_var(task_vars, "xcon_server_name", host=host) or host).upper() == server.upper():
                return host
        raise AnsibleActionFail(f"server {server} is not in the inventory group xcon_exchange")

    @staticmethod
    def _wait(lab_control, minutes):
        if lab_control:
            proc = subprocess.run([lab_control, "advance", str(minutes)], capture_output=True, text=True, timeout=300, check=False)
            if proc.returncode != 0:
                raise AnsibleActionFail(f"lab clock: {proc.stderr.strip()}")
        else:
            time.sleep(minutes * 60)

    @staticmethod
    def _judge(link, evidence, started, settle, unreadable=None):
        outside, inside = link["outside"], link["inside"]
        missing = [(unreadable or {}).get(side["host"]) or f"{side['host']} could not be read"
                   for side in (outside, inside) if side["host"] not in evidence or side["host"] not in started]
        if missing:
            return {"state": "pending", "details": {"outside_queue": None, "new_refusals": None, "unreadable": missing}}
        out_ev, in_ev = evidence[outside["host"]], evidence[inside["host"]]
        queue = out_ev.get("queues", {}).get(outside["connector"], 0)
        cutoff_out = gather.add_minutes(started[outside["host"]], settle)
        cutoff_in = gather.add_minutes(started[inside["host"]], settle)
        new_out = [e for e in out_ev["events"] if str(e["id"]) in OUTSIDE_REFUSALS and e["time"] > cutoff_out]
        new_in = [e for e in in_ev["events"] if str(e["id"]) in INSIDE_REFUSALS and e["time"] > cutoff_in]
        passed = queue == 0 and not new_out and not new_in
        return {
            "state": "passed" if passed else "pending",
            "details": {
                "outside_queue": queue,
                "new_refusals": len(new_out) + len(new_in),
                "new_refusal_ids": sorted({e["id"] for e in new_out + new_in}),
                "since": {outside["host"]: started[outside["host"]], inside["host"]: started[inside["host"]]},
            },
        }
