"""When xcon_verify reads the servers, and what it keeps of their events between reads (pure Python).

When (``next_wait``): a link passes only at a read taken once its whole verification window has
been watched (``waited >= window``), so a read before the shortest window can decide nothing about
a pass. The verification reads every involved server at the start (the baseline: each server's
time then is the start of its watch, and the report's timeline needs a read after the changes),
then at the end of the shortest window, then every poll interval until the timeout.  Between the
baseline and the first decision only the servers whose last read failed are read again, at every
poll interval: two failed reads in a row of a server on every pending link end the verification
early, as they always did ("unreadable twice -> stop").  The waiting is never shortened: against
real servers it is real minutes, and each link still needs its whole window.

What (``EventUnion``): each read of a server asks for its events from the previous successful
read's time on that server's own clock, less ``event_read_overlap_seconds`` (profile assumption:
an entry's TimeGenerated is when the MTA submitted it, and the event log service may write it a
moment later, after a read that stamped a later time), and the verification keeps the union of
what it read.  An entry read twice counts once (its record number, EventLogEntry.Index, with its
id and time: a cleared log restarts the numbers).  The first read of a server starts where the
audit's read of it ended (its time on that server's clock), as before, so the union holds every
event from the audit on; a server that could not be read keeps its last time, and its next read
covers the gap.
"""

from __future__ import annotations

import datetime as _dt

from xcon.clock import parse_iso


def next_wait(waited, first, poll, timeout, probing):
    """(minutes to wait, whether the read after it reads every server) from `waited` minutes on.

    first: when the first link can pass (its window); poll: the poll interval; timeout: when the
    verification ends; probing: some server's last read failed (it is read again every interval
    before the first decision)."""
    decide = first if waited < first else waited + poll
    decide = min(decide, timeout)
    if probing and waited + poll < decide:
        return poll, False
    return decide - waited, True


def _key(event):
    record = event.get("record")
    if record is None:
        return (event.get("time"), event.get("id"), event.get("message"))
    return (record, event.get("id"), event.get("time"))


class EventUnion:
    """Per server, the events of every read so far and where the next read starts."""

    def __init__(self, audit, overlap_seconds):
        self.audit = dict(audit or {})        # server -> its time at the audit's read (its clock)
        self.overlap = _dt.timedelta(seconds=max(0, int(overlap_seconds)))
        self.last_now = {}                    # server -> its time at its last successful read
        self.events = {}                      # server -> {key: event}

    def since(self, server):
        """Where the next read of `server` starts (ISO, its clock), None: the read's own window."""
        last = self.last_now.get(server)
        if last is None:
            return self.audit.get(server)
        start = parse_iso(last) - self.overlap
        audit = self.audit.get(server)
        if audit and parse_iso(audit) > start:
            return audit
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def add(self, server, evidence):
        """Record one read of `server`; returns the evidence with ``events`` = the union so far
        (oldest first)."""
        kept = self.events.setdefault(server, {})
        counts = {}
        for event in evidence.get("events") or []:
            key = _key(event)
            counts[key] = counts.get(key, 0) + 1
            if event.get("record") is None:  # no record number: the same (time, id, text) n times in one read is n events
                key = key + (counts[key],)
            kept.setdefault(key, event)
        # A read cut at the op's limit (gather.read_evidence) may have left the oldest entries of its
        # span unread: the next read starts where this one did, so no span is ever skipped.
        if evidence.get("now") and not evidence.get("events_truncated"):
            self.last_now[server] = evidence["now"]
        union = sorted(kept.values(), key=lambda e: (str(e.get("time")), e.get("record") or 0))
        return dict(evidence, events=union)
