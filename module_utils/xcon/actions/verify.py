"""xcon_verify: prove by observation that mail flows again on every changed link.

Per read, one WinRM command per involved server reads its MTA evidence; a link passes when the
outside server's queue for the link is empty and no refusal (1290/289/1294 outside, 1293
inside) is newer than the change plus the settle time, over its whole window.  When it reads and
what it keeps of the events between reads: xcon.verify_reads.  Against the lab, waiting advances
the emulated clock (`xconlab advance`) instead of sleeping.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display

from xcon import clock
from xcon import diagnosis_file as xdiagnosis_file
from xcon import fleet_fork
from xcon import gather
from xcon import report_timeline as xtimeline
from xcon import state as xstate
from xcon import verify_reads
from xcon.action import XconAction
from xcon.profile import get_profile
from xcon.specs import VERIFY

display = Display()

OUTSIDE_REFUSALS = ("1290", "289", "1294")
# 1293 is the inside MTA's refusal. A 9301 alone is not one: MTAs before the KB Q189345 fix log it
# even when the reverse lookup then finds the connector and the association is accepted.
INSIDE_REFUSALS = ("1293",)


def _kinits(reader):
    """Whether a reader's client would obtain a Kerberos ticket by kinit (xcon.fleet_fork)."""
    return not isinstance(reader, Exception) and reader[0].kinits()


class ActionModule(XconAction):
    ARGUMENT_SPEC = VERIFY
    REQUIRED_ONE_OF = [["diagnosis_file", "links"]]
    MUTUALLY_EXCLUSIVE = [["diagnosis_file", "links"]]

    def xcon_run(self, args, task_vars):
        # Verify every link this run changed (or finishes: xcon.open_transactions).  A link that
        # nothing changed is not verified: no observation window proves a fault gone that no
        # change addressed (its status stays as found).
        all_links, plan = xdiagnosis_file.links_and_plan(args)
        changed_ids = {c.get("link") for c in plan}
        links = [l for l in all_links if l["id"] in changed_ids]
        states = {}
        # A link whose MTA restart is pending has changes that are not active: nothing to observe yet.
        pending_hosts = self._pending_hosts(args, task_vars, links)
        for link in list(links):
            hosts = sorted({link[side]["host"] for side in ("inside", "outside")} & pending_hosts)
            if hosts:
                states[link["id"]] = {"state": "pending", "details": {
                    "reason": f"MTA restart pending on {', '.join(hosts)}: the changes are not active yet", "restart_pending": hosts}}
                links.remove(link)
        if not links:
            return {"verification": states, "passed": not states, "minutes_waited": 0}
        hosts = {}
        for link in links:
            for side in ("inside", "outside"):
                hosts[link[side]["host"]] = None
        inventory = {self._inventory_host(task_vars, name): name for name in hosts}
        # Each server's events are read from the audit's read on (its time on that server's clock):
        # the report's timeline then has every event between the audit and the end of the polls.
        audit = {}
        for link in links:
            for name, when in ((link.get("timeline") or {}).get("audit") or {}).items():
                audit[name] = min(audit.get(name, when), when)
        # Later reads start where the previous one ended, on that server's clock, and the judge sees
        # the union of every read (xcon.verify_reads.EventUnion).
        union = verify_reads.EventUnion(audit, get_profile("5.5")["assumptions"]["event_read_overlap_seconds"])
        readers = self._readers(task_vars, inventory)
        unreadable = {}

        def read(inv_host, window):
            if isinstance(readers[inv_host], Exception):
                raise readers[inv_host]
            client, server, version = readers[inv_host]
            return gather.read_evidence(client, server, version, window, since=union.since(inventory[inv_host]))

        def read_all(names, window):
            # A server that cannot be read fails its links' verification (with the reason), not
            # the whole verification: the other links are still judged and the report is written.
            evidence = {}
            # as many threads as Ansible's forks, as every fleet task (it was 16 whatever the forks:
            # against real servers, each read waits for the server, and 200 reads took 13 rounds),
            # spread over the controller's cores (xcon.fleet_fork)
            def share(hosts, threads, child):
                # in a forked process, a server whose client would kinit is left to the worker
                left = [h for h in hosts if child and _kinits(readers[h])]
                jobs = ((h, read, (h, window)) for h in hosts if h not in left)
                return {**fleet_fork.thread_outcomes(jobs, threads), **{h: fleet_fork.DEFER for h in left}}

            outcomes = fleet_fork.run_fleet(names, share, self.fleet_threads())
            for host in names:
                ok, value = outcomes[host]
                if ok:
                    evidence[inventory[host]] = value
                    unreadable.pop(inventory[host], None)
                else:  # any failure to read is "could not read"
                    unreadable[inventory[host]] = f"{inventory[host]} could not be read: {value}"
            return evidence

        polls = []  # (controller time, evidence by server) of every read, for the report's timeline
        started = {}
        observed = {}  # server -> its latest read, with the events of all its reads (the union)

        def take(names, window):
            polls.append((xtimeline.controller_now(), read_all(names, window)))
            for name, ev in polls[-1][1].items():
                observed[name] = union.add(name, ev)
                started.setdefault(name, ev["now"])
            return polls[-1][1]

        take(list(inventory), 1)
        poll, settle = max(1, args["poll_minutes"]), args["settle_minutes"]
        windows = {link["id"]: max(settle, int((link.get("verify_window") or {}).get("minutes") or 0)) for link in links}
        # the proof needs the whole window, whatever the timeout for the queues to drain says
        timeout = max(args["timeout_minutes"], max(windows.values()))
        first = min(min(windows.values()), timeout)  # no link can pass before its window: no read decides earlier
        waited = 0
        blind = 0  # consecutive reads in which every pending link had a server that could not be read
        while waited < timeout:
            step, full = verify_reads.next_wait(waited, first, poll, timeout, probing=bool(unreadable))
            self._wait(args["lab_control"], waited, step, poll, timeout, first)
            waited += step
            # before any link can pass, only the servers whose last read failed are read again (the
            # others' last reads stand: no link can pass on them before its window)
            take(list(inventory) if full else [h for h, name in inventory.items() if name in unreadable], waited + 1)
            current = {name: ev for name, ev in observed.items() if name not in unreadable}
            judged = {link["id"]: self._judge(link, current, started, settle, unreadable, waited, windows[link["id"]]) for link in links}
            states.update(judged)
            pending = [i for i, s in judged.items() if s["state"] != "passed"]
            display.display(
                f"xcon_verify: {waited}/{timeout} min: "
                + ", ".join(f"{i} queue={s['details']['outside_queue']} new_refusals={s['details']['new_refusals']}" for i, s in judged.items())
            )
            if not pending and waited >= settle:
                break
            blind = blind + 1 if pending and all(judged[i]["details"].get("unreadable") for i in pending) else 0
            if blind >= 2:
                break  # waiting longer proves nothing about links whose servers do not answer
        for link in links:
            state = states.setdefault(link["id"], {"state": "failed", "details": {"reason": "not observed"}})
            state["details"]["minutes_waited"] = waited
            if state["state"] != "passed":
                state["state"] = "failed"
        # The evidence baseline (what later audits no longer count) is recorded by the final report,
        # and only for a link whose transaction it closes (xcon_report).
        ok = all(s["state"] == "passed" for s in states.values())
        timeline = {link["id"]: xtimeline.from_polls(link, polls) for link in links}
        return {"verification": states, "passed": ok, "minutes_waited": waited, "timeline": timeline}

    def _readers(self, task_vars, inventory):
        """Per inventory host, (client, server name, Exchange version), resolved once and in this
        thread (Ansible's plugin loader is not thread-safe), or the exception that prevented it:
        a host whose settings are wrong is a server that could not be read."""
        readers = {}
        for inv_host in inventory:
            try:
                server = self.host_var(task_vars, "xcon_server_name", host=inv_host) or inv_host
                version = str(self.host_var(task_vars, "xcon_exchange_version", "5.5", host=inv_host))
                endpoint = self.host_var(task_vars, "xcon_management_host", host=inv_host) or inv_host
                client = gather.client_for(self.connection_for(task_vars, endpoint))
                client.target_credentials = self.target_credentials(task_vars, endpoint, host=inv_host)
                readers[inv_host] = (client, server, version)
            except Exception as exc:  # noqa: BLE001 - reported as this server's read failure
                readers[inv_host] = exc
        return readers

    @staticmethod
    def _wait(lab_control, waited, step, poll, timeout, first):
        """Wait `step` minutes. In real time a line every poll interval shows the wait goes on;
        the lab's clock moves the whole step at once."""
        if lab_control:
            clock.wait_minutes(lab_control, step)
            return
        done = 0
        while done < step:
            chunk = min(poll, step - done)
            clock.wait_minutes(lab_control, chunk)
            done += chunk
            if done < step:
                display.display(f"xcon_verify: {waited + done}/{timeout} min: no read until {first} min "
                                f"(no link can pass before its verification window)")

    def _pending_hosts(self, args, task_vars, links):
        if not args.get("state_dir"):
            return set()
        pending = set()
        for link in links:
            for side in ("inside", "outside"):
                name = link[side]["host"]
                if xstate.restart_pending(xstate.restart_marker(args["state_dir"], self._inventory_host(task_vars, name))):
                    pending.add(name)
        return pending

    def _inventory_host(self, task_vars, server):
        """The inventory host of Exchange server `server` (the first of group xcon_exchange whose
        xcon_server_name, else name, it is).  The index is built once per task: scanning the group
        for every side of every link grew with the square of the fleet (most of a 300-link
        verification's controller time)."""
        index = self.__dict__.get("_xcon_servers")
        if index is None:
            index = self._xcon_servers = {}
            for host in task_vars.get("groups", {}).get("xcon_exchange", []):
                index.setdefault(str(self.host_var(task_vars, "xcon_server_name", host=host) or host).upper(), host)
        host = index.get(str(server).upper())
        if host is None:
            raise AnsibleActionFail(f"server {server} is not in the inventory group xcon_exchange")
        return host

    @staticmethod
    def _judge(link, evidence, started, settle, unreadable=None, waited=0, window=0):
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
        stopped = sorted(side["host"] for side, ev in ((outside, out_ev), (inside, in_ev))
                         if ((ev.get("service") or {}).get("state") or "Running") != "Running")
        passed = queue == 0 and not new_out and not new_in and not stopped and waited >= window
        return {
            "state": "passed" if passed else "pending",
            "details": {
                "outside_queue": queue,
                "new_refusals": len(new_out) + len(new_in),
                "new_refusal_ids": sorted({e["id"] for e in new_out + new_in}),
                "since": {outside["host"]: started[outside["host"]], inside["host"]: started[inside["host"]]},
                "window_minutes": window, "window": link.get("verify_window") or {},
                **({"mta_not_running": stopped} if stopped else {}),
            },
        }
