"""The MTA model as methods of :class:`model.Lab`: one step per emulated minute (queues, routing,
associations, delivery, backlog thresholds); the steps are described in model.py."""
from __future__ import annotations

import datetime as _dt
from typing import Dict, List, Optional

from . import schema
from .base import HISTORY_CAP, _ip
from .events import address_hex
from .servers import Link, Server


class MtaMixin:
    """MTA simulation of :class:`model.Lab` (state: ``servers``, ``traffic``, ``flows``, ``time``)."""

    def advance(self, minutes: int) -> None:
        """Run the model for ``minutes`` emulated minutes (each minute: time += 1, then one step)."""
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
            raise ValueError("minutes must be a whole number >= 0")
        with self.lock:
            try:
                for _ in range(minutes):
                    self.time += _dt.timedelta(minutes=1)
                    self.minute += 1
                    self._replication_step()
                    # Each MTA by its name, for this minute's step (nothing in a step renames an MTA):
                    # looking every link's remote MTA up among all servers grew with the square of the lab.
                    self._mta_index = {}
                    for server in self.servers.values():
                        self._mta_index.setdefault(server.mta_name().casefold(), server)
                    self._address_index = self._address_indexes()
                    self._step()
            finally:
                self._mta_index = self._address_index = None

    def _mta_server(self, mta_name: str) -> Optional[Server]:
        index = getattr(self, "_mta_index", None)
        if index is not None:
            return index.get(mta_name)
        for server in self.servers.values():
            if server.mta_name().casefold() == mta_name:
                return server
        return None

    def _active(self, link: Link) -> bool:
        if link.style == 2:
            return True
        if link.style == 1:
            weekday = (self.time.weekday() + 1) % 7          # Sunday = 0
            return schema.slot_active(link.grid, schema.schedule_slot(weekday, self.time.hour, self.time.minute))
        return False

    def _route(self, server: Server, links: List[Link], dest: str) -> Optional[Link]:
        """Q193322: skip Never; active now, then Selected (idle), then Remote initiated; then cost."""
        candidates = []
        for link in links:
            target = self._mta_server(link.remote)
            if target is None or target.name != dest or link.style == 0:
                continue
            rank = 0 if self._active(link) else (1 if link.style == 1 else 2)
            candidates.append((rank, link.cost, link.key, link))
        return min(candidates, key=lambda c: c[:3])[3] if candidates else None

    def _enqueue(self, server: Server, links: List[Link], dest: str, count: int) -> None:
        link = self._route(server, links, dest)
        if link is None:
            server.work[dest] = server.work.get(dest, 0) + count
            return
        queue = server.queues.setdefault(link.key, {"name": link.name, "dest": dest, "count": 0})
        queue["count"] += count

    def _step(self) -> None:
        for server in self.servers.values():
            server.services.settle(self.time)     # a stop or start an op left pending completes
        links = {name: server.links() for name, server in self.servers.items()}
        # 1. queues whose connector is gone / Never / repointed go back to the work queue
        for name in sorted(self.servers):
            server = self.servers[name]
            by_key = {link.key: link for link in links[name]}
            for key, queue in list(server.queues.items()):
                link = by_key.get(key)
                target = self._mta_server(link.remote) if link else None
                if link is None or link.style == 0 or target is None or target.name != queue["dest"]:
                    if queue["count"]:
                        server.work[queue["dest"]] = server.work.get(queue["dest"], 0) + queue["count"]
                    if link is None:
                        del server.queues[key]
                        server.backlogged.discard(key)
                    else:
                        queue["count"] = 0
                        if target is not None:
                            queue["dest"] = target.name
        # 2. new mail, then the work queue is routed again
        for flow in self.traffic:
            flow["carry"] += flow["per_minute"]
            count = int(flow["carry"] + 1e-9)
            if count:
                flow["carry"] -= count
                self._flow(flow["from"], flow["to"])["sent"] += count
                self._enqueue(self.servers[flow["from"]], links[flow["from"]], flow["to"], count)
        for name in sorted(self.servers):
            server = self.servers[name]
            for dest in sorted(server.work):
                count = server.work.pop(dest)
                if count:
                    self._enqueue(server, links[name], dest, count)
        # 3./4. associations
        for name in sorted(self.servers):
            server = self.servers[name]
            if server.state != "Running":
                continue
            for link in links[name]:
                queue = server.queues.get(link.key)
                if not queue or not queue["count"] or not self._active(link):
                    continue
                due = server.retry_at.get(link.key)
                if due is not None and due > self.time:
                    continue
                self._associate(server, link, links)
        # 5. thresholds, peaks, flow queue peaks
        self._thresholds(links)

    def _associate(self, caller: Server, link: Link, links: Dict[str, List[Link]]) -> None:
        callee_name, source, _reason = (None, None, "")
        address = self._resolve(link.address, link.address_type) if link.address else None
        if address is not None:
            # The MTA calls out on its own RFC1006 port (Q161931); a GSP relays a port unchanged.
            callee_name, source, _reason = self._connect(caller.name, address, caller.mta_port)
        callee = self.servers.get(callee_name) if callee_name else None
        # Nothing listens there unless the callee's MTA uses the same port (Q176466: "All MTAs must
        # use the same port number").
        if callee is None or callee.state != "Running" or callee.mta_port != caller.mta_port:
            self._refused(caller, link)
            return
        source_ip = _ip(source) if source else None
        caller_mta = caller.mta_name().casefold()
        # Q193380 / Q189345: the callee compares the caller's address with each connector's Stack
        # address; failing that it reverse-looks-up the address and compares the name.
        by_address = [c for c in links[callee.name]
                      if source_ip is not None and c.address and _ip(c.address.strip()) == source_ip]
        by_name: List[Link] = []
        name = None
        if not by_address and source_ip is not None:
            if callee.mode_9301 == "every_miss":
                callee.log(9301, self.time, callee.stack_x500(), address_hex(str(source_ip)))
            name = callee.lookup(str(source_ip), self)
            if name is not None:
                by_name = [c for c in links[callee.name]
                           if c.address and _ip(c.address.strip()) is None and c.address_type != 1
                           and (c.address.strip().rstrip(".").lower() == name.lower()
                                or _ip(self._resolve(c.address, c.address_type) or "") == source_ip)]
        matches = by_address or by_name
        usable = [c for c in matches if c.style != 0]
        if not usable:
            own = next((c for c in links[callee.name] if c.remote == caller_mta), None)
            if matches:
                # Q169716: the side whose connector is Never logs 37 and 1293 together
                callee.log(37, self.time, matches[0].x500)
                own = matches[0]
            elif callee.mode_9301 != "none" and source_ip is not None:
                callee.log(9301, self.time, callee.stack_x500(), address_hex(name or str(source_ip)))
            callee.log(1293, self.time, own.x500 if own else schema.x500_upper(callee.connections_dn), 0, 0, 1, 1)
            callee.associations["inbound_refused"] += 1
            self._refused(caller, link)
            return
        usable.sort(key=lambda c: (c.remote != caller_mta, c.key))
        matched = usable[0]
        if link.remote != callee.mta_name().casefold():
            # the association names another MTA than the one that answered
            callee.log(1293, self.time, matched.x500, 0, 0, 1, 1)
            callee.associations["inbound_refused"] += 1
            self._refused(caller, link)
            return
        caller.retry_at.pop(link.key, None)
        caller.associations["outbound_ok"] += 1
        callee.associations["inbound_ok"] += 1
        self._deliver(caller, callee)
        if link.twa and matched.twa:
            self._deliver(callee, caller)

    def _deliver(self, sender: Server, receiver: Server) -> None:
        delivered = 0
        for queue in sender.queues.values():
            if queue["dest"] == receiver.name and queue["count"]:
                delivered += queue["count"]
                queue["count"] = 0
        if delivered:
            flow = self._flow(sender.name, receiver.name)
            flow["delivered"] += delivered
            history = flow["history"]
            history[self.minute] = history.get(self.minute, 0) + delivered
            if len(history) > HISTORY_CAP:
                del history[min(history)]

    def _refused(self, caller: Server, link: Link) -> None:
        caller.log(1290, self.time, link.x500, 0, 0, 202, 1)
        caller.log(289, self.time, link.x500)
        caller.log(1294, self.time, link.x500)
        caller.associations["outbound_failed"] += 1
        caller.retry_at[link.key] = self.time + _dt.timedelta(seconds=link.retry)

    def _thresholds(self, links: Dict[str, List[Link]]) -> None:
        high, low = self.threshold, self.threshold // 2
        for name in sorted(self.servers):
            server = self.servers[name]
            dns = {link.key: link.x500 for link in links[name]}
            for key in sorted(server.queues):
                queue = server.queues[key]
                count = queue["count"]
                server.peaks[queue["name"]] = max(server.peaks.get(queue["name"], 0), count)
                dn = dns.get(key) or schema.x500_upper((("cn", queue["name"]),) + server.connections_dn)
                if count >= high and key not in server.backlogged:
                    server.backlogged.add(key)
                    server.log(659, self.time, dn, count)
                elif count <= low and key in server.backlogged:
                    server.backlogged.discard(key)
                    server.log(660, self.time, dn, count)
            work = sum(server.work.values())
            if work >= high and "*work*" not in server.backlogged:
                server.backlogged.add("*work*")
                server.log(666, self.time, work)
            elif work <= low and "*work*" in server.backlogged:
                server.backlogged.discard("*work*")
                server.log(667, self.time, work)
        for (src, dst), flow in self.flows.items():
            flow["peak_queued"] = max(flow["peak_queued"], self._queued(src, dst))

    def _queued(self, src: str, dst: str) -> int:
        server = self.servers[src]
        return server.work.get(dst, 0) + sum(q["count"] for q in server.queues.values() if q["dest"] == dst)
