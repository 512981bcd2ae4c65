"""A link's timeline for the report (``links[].timeline``, docs/contracts/report.md): what happened
over time, from what the tool already reads (pure Python; report_timeline_svg draws it).

* ``events``: the link's MTA events with their times, each on its server's clock - the refusals of
  the calling side (1290/289/1294), of the refusing side (1293, 37 and 9301: the side that does not
  recognise the caller) and the backlog events (659/660).  From the audit's read (its evidence
  window) and from every verification poll (which reads from the audit's time on, so the events
  between the audit and the change are not lost).  The same event read twice is kept once.
* ``queue``: the queue length of the link's connectors at each read: the audit's and every
  verification poll's.  The outside server's primary connector is always there (no counter
  instance = nothing queued since the MTA started, Q157660; the verification judges it the same
  way); other connectors where their counter instance exists.  The backlog events carry the length
  the MTA logged (659 "backlogged with N", 660 "subsided leaving N", Q163085): the picture's queue
  line takes both.
* ``changes``: each change applied by this run and each MTA restart it made (``kind: restart``).
  A restart is placed at the MTA's own startup event (9298) that the verification read after it;
  a change at the time the run's journal recorded it (the controller's clock), put on the servers'
  clock between the reads that bracket it (audit, restart, verification): a change is never drawn
  before the audit's read nor after its link's MTA restart.  --check: none.

The lists are capped (EVENTS_CAP, QUEUE_CAP) so that a fleet's report stays small: the oldest
events beyond the cap are left out and summarised in ``events_omitted``; the newest (the change
and what followed it) are always kept.
"""

from __future__ import annotations

import datetime as _dt

from xcon.clock import parse_iso

CALLING_IDS = (1290, 289, 1294)     # the calling side's refused associations (Q196381)
REFUSING_IDS = (1293, 37, 9301)     # the called side's refusals (1293; 37 with Never, Q169716) and 9301 (no match)
BACKLOG_IDS = (659, 660)            # queue backlogged / subsided (Q163085)
TIMELINE_IDS = CALLING_IDS + REFUSING_IDS + BACKLOG_IDS
REFUSAL_IDS = CALLING_IDS + (1293, 37)   # refusals proper: 9301 alone is not one (Q189345)
STARTUP_ID = 9298                   # "MTA Service startup complete" (Q174695)
# Events that may name no connector of the link and still be its: a 1293 may name the connections
# container, a 9301 names an address (the diagnosis counts them the same way).
UNATTRIBUTED_IDS = REFUSING_IDS
EVENTS_CAP = 40
QUEUE_CAP = 48
SIDES = ("inside", "outside")


parse = parse_iso  # the controller's one ISO-8601 reader (xcon.clock)


def _norm(value):
    return str(value or "").strip().casefold()


def iso(value):
    """A datetime, or an ISO-8601 text of a server or the controller, as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)[:19] + "Z"


def controller_now():
    """The controller's clock, with sub-second precision (the anchors of placed changes)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _connectors(link, side):
    return [n for n in (link[side].get("connector"), link[side].get("reverse_connector")) if n]


def link_events(events, host, connectors):
    """The timeline entries of `host`'s parsed `events` (xcon.evidence) that concern a link whose
    connectors on that host are `connectors`.  A backlog event (659 "backlogged with N messages",
    660 "subsided leaving N", Q163085) also names its ``connector`` and the ``length`` it logged:
    a reading of that queue by the MTA itself."""
    names = {_norm(c): c for c in connectors}
    found = []
    for event in events or []:
        event_id = int(event.get("id") or 0)
        if event_id not in TIMELINE_IDS or not event.get("time"):
            continue
        named = _norm(event.get("connector"))
        if (named and named not in names) or (not named and event_id not in UNATTRIBUTED_IDS):
            continue
        entry = {"time": iso(event["time"]), "host": host, "id": event_id}
        if event_id in BACKLOG_IDS:
            try:
                entry.update(connector=names[named], length=int(event.get("count")))
            except (TypeError, ValueError):
                pass
        found.append(entry)
    return found


def queue_points(link, side, evidence):
    """The queue lengths `evidence` (one read of the side's server) shows for the link's connectors."""
    host = link[side]["host"]
    queues = {_norm(k): v for k, v in ((evidence or {}).get("queues") or {}).items()}
    now = (evidence or {}).get("now")
    if not now:
        return []
    points = []
    for index, name in enumerate(_connectors(link, side)):
        value = queues.get(_norm(name))
        if value is None and side == "outside" and index == 0 and link[side].get("connector"):
            value = 0  # no instance: nothing queued since the MTA started (as the verification judges it)
        if isinstance(value, (int, float)):
            points.append({"time": iso(now), "host": host, "connector": name, "length": int(value)})
    return points


def _merge_events(lists):
    """The union of event lists read at different times: the same event (host, time, id) read by
    two reads counts once; two in one read (e.g. two 9301 in a minute) stay two."""
    merged, first = {}, {}
    for events in lists:
        counts = {}
        for event in events:
            key = (event["time"], event["host"], event["id"])
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, event)
        for key, count in counts.items():
            merged[key] = max(merged.get(key, 0), count)
    return [dict(first[key]) for key, n in sorted(merged.items()) for _ in range(n)]


def from_audit(link, servers):
    """The timeline of `link` as the audit read it (servers: the diagnosis's, with ``evidence``)."""
    events, queue, audit, starts = [], [], {}, []
    for side in SIDES:
        host = link[side]["host"]
        evidence = (servers.get(host) or {}).get("evidence")
        if not evidence or not evidence.get("now"):
            continue
        audit[host] = iso(evidence["now"])
        if evidence.get("since"):
            starts.append(iso(evidence["since"]))
        events += link_events(evidence.get("events"), host, _connectors(link, side))
        queue += queue_points(link, side, evidence)
    timeline = {"audit": audit, "events": _merge_events([events]), "queue": queue, "changes": []}  # finish() dedupes the queue
    return finish(timeline, start=min(starts) if starts else None)


def _qkey(point):
    return (point["time"], point["host"], point["connector"])


def _unique(points):
    """Queue readings by time, one per (time, server, connector) (a reading read twice is one), and
    of a run of equal readings of one queue only its first and last (the line is the same)."""
    ordered = sorted({_qkey(q): q for q in points}.values(), key=_qkey)
    by_queue = {}
    for point in ordered:
        by_queue.setdefault((point["host"], point["connector"]), []).append(point)
    kept = []
    for readings in by_queue.values():
        kept += [p for i, p in enumerate(readings)
                 if i in (0, len(readings) - 1) or not readings[i - 1]["length"] == p["length"] == readings[i + 1]["length"]]
    return sorted(kept, key=_qkey)


def from_polls(link, polls):
    """What the verification's reads add to `link`'s timeline: ``{"events", "queue", "reads",
    "startups"}``; `polls` is ``[(controller time, {server: evidence}), ...]`` in read order.
    ``reads`` (server time and controller time of each read) and ``startups`` (9298 events) place
    the changes; they do not go into the report."""
    events, queue, reads, startups = [], [], [], []
    for at, evidence_by_host in polls:
        for side in SIDES:
            host = link[side]["host"]
            evidence = evidence_by_host.get(host)
            if not evidence or not evidence.get("now"):
                continue
            reads.append({"host": host, "time": iso(evidence["now"]), "at": at})
            events.append(link_events(evidence.get("events"), host, _connectors(link, side)))
            queue += queue_points(link, side, evidence)
            startups += [{"host": host, "time": iso(e["time"])} for e in evidence.get("events") or []
                         if int(e.get("id") or 0) == STARTUP_ID and e.get("time")]
    unique = sorted({(s["time"], s["host"]) for s in startups})
    return {"events": _merge_events(events), "queue": queue, "reads": reads,
            "startups": [{"time": t, "host": h} for t, h in unique]}


# -- placing the changes on the servers' clock ----------------------------------------------------
def _place(at, anchors):
    """Controller time `at` on a server's clock, by the (controller, server) time pairs `anchors`
    (sorted): linear between the two that bracket it, the nearest one's offset outside them."""
    if not anchors:
        return None
    before = [a for a in anchors if a[0] <= at]
    after = [a for a in anchors if a[0] > at]
    if before and after:
        (c0, s0), (c1, s1) = before[-1], after[0]
        span = (c1 - c0).total_seconds()
        return s0 + (s1 - s0) * ((at - c0).total_seconds() / span) if span > 0 else s0
    c0, s0 = (before[-1] if before else after[0])
    return s0 + (at - c0)


def place_changes(link, applied, restarts, polls, audit_at):
    """The ``changes`` entries of `link`'s timeline.

    applied: ``[{"at": controller time, "step", "target", "kind"}]`` (changes this run applied);
    restarts: ``{server: controller time}`` (MTA restarts this run made on the link's servers);
    polls: from_polls' result; audit_at: the controller's time when the audit's reads were taken."""
    timeline = link.get("timeline") or {}
    audit = timeline.get("audit") or {}
    anchors = {}
    for host, time in audit.items():
        if audit_at:
            anchors.setdefault(host, []).append((parse(audit_at), parse(time)))
    for read in (polls or {}).get("reads") or []:
        anchors.setdefault(read["host"], []).append((parse(read["at"]), parse(read["time"])))
    hosts = [link[s]["host"] for s in ("outside", "inside")]
    restart_marks = []
    for host, at in sorted(restarts.items()):
        floor = audit.get(host)
        seen = [s["time"] for s in (polls or {}).get("startups") or [] if s["host"] == host and (not floor or s["time"] >= floor)]
        placed = _place(parse(at), sorted(anchors.get(host) or []))
        when = seen[-1] if seen else (iso(placed) if placed else None)
        if when:
            restart_marks.append({"time": when, "step": "restart", "target": host, "kind": "restart"})
    latest = min((parse(r["time"]) for r in restart_marks), default=None)
    floor = max((parse(t) for t in audit.values()), default=None)
    marks = []
    for change in applied:
        host = change["target"] if change["target"] in hosts else next((h for h in hosts if anchors.get(h)), None)
        placed = _place(parse(change["at"]), sorted(anchors.get(host) or [])) if host else None
        if placed is None:
            continue
        if floor and placed < floor:
            placed = floor
        if latest and placed > latest:
            placed = latest
        marks.append({"time": iso(placed), "step": change["step"], "target": change["target"], "kind": change["kind"]})
    return sorted(marks + restart_marks, key=lambda m: (m["time"], m["kind"] == "restart", str(m["step"])))


def complete(link, polls=None, changes=None):
    """`link`'s timeline with the verification's reads and the placed changes added, capped."""
    timeline = dict(link.get("timeline") or {"audit": {}, "events": [], "queue": [], "changes": []})
    omitted = timeline.pop("events_omitted", None)
    if polls:
        timeline["events"] = _merge_events([timeline.get("events") or [], polls.get("events") or []])
        timeline["queue"] = (timeline.get("queue") or []) + (polls.get("queue") or [])  # finish() dedupes it
    timeline["changes"] = list(changes or [])
    start = (timeline.get("window") or {}).get("start")
    return finish(timeline, start=start, omitted=omitted)


def finish(timeline, start=None, omitted=None):
    """Cap the lists (oldest events first out, summarised) and set the ``window`` they span."""
    events = timeline.get("events") or []
    # a second cap (the final report's, after the audit's) adds to the first one's summary
    if len(events) > EVENTS_CAP:
        dropped, events = events[:-EVENTS_CAP], events[-EVENTS_CAP:]
        summary = dict(omitted or {"count": 0, "by_id": {}, "first": dropped[0]["time"], "last": dropped[-1]["time"]})
        summary["count"] += len(dropped)
        by_id = dict(summary["by_id"])
        for event in dropped:
            by_id[str(event["id"])] = by_id.get(str(event["id"]), 0) + 1
        summary.update(by_id=by_id, first=min(summary["first"], dropped[0]["time"]), last=max(summary["last"], dropped[-1]["time"]))
        omitted = summary
    timeline["events"] = events
    queue = _unique(timeline.get("queue") or [])
    if len(queue) > QUEUE_CAP:
        queue = queue[:1] + queue[-(QUEUE_CAP - 1):]
    timeline["queue"] = queue
    if omitted:
        timeline["events_omitted"] = omitted
    times = [e["time"] for e in events] + [q["time"] for q in queue] + [c["time"] for c in timeline.get("changes") or []]
    times += list((timeline.get("audit") or {}).values()) + ([omitted["first"]] if omitted else [])
    if start:
        times.append(start)
    timeline["window"] = {"start": min(times), "end": max(times)} if times else {"start": None, "end": None}
    return timeline


def queue_lines(timeline):
    """Every reading of each queue, in time order: ``{(host, connector): [{"time", "length", ...}]}``
    (the counter reads of ``queue`` and the lengths the backlog events logged)."""
    lines = {}
    for point in (timeline.get("queue") or []) + [e for e in timeline.get("events") or [] if "length" in e]:
        lines.setdefault((point["host"], point["connector"]), []).append(point)
    return {key: sorted(points, key=lambda p: p["time"]) for key, points in lines.items()}


def sentences(link, check_mode):
    """What the timeline shows, in words (under the picture; a mail client that drops SVG keeps it)."""
    timeline = link.get("timeline") or {}
    events = timeline.get("events") or []
    refusals = [e for e in events if e["id"] in REFUSAL_IDS]
    lines = []
    if refusals:
        lines.append(f"{len(refusals)} refusals (1290/289/1294/1293/37) listed, the last at {refusals[-1]['time']}.")
    else:
        lines.append("No refusal (1290/289/1294/1293/37) in the window.")
    changes = [c for c in timeline.get("changes") or [] if c["kind"] != "restart"]
    restarts = [c for c in timeline.get("changes") or [] if c["kind"] == "restart"]
    if check_mode:
        planned = len(link.get("changes") or [])
        lines.append(f"would change: {planned} change(s) planned; check mode made none, so no change is marked."
                     if planned else "Nothing to change.")
    elif changes or restarts:
        last = max(c["time"] for c in changes + restarts)
        after = [e for e in refusals if e["time"] > last]
        lines.append(f"{len(changes)} change(s) from {min(c['time'] for c in changes + restarts)}, "
                     f"{len(restarts)} MTA restart(s); {len(after)} refusals after the last ({last}).")
    lines_by_queue = queue_lines(timeline)
    for (host, connector), points in sorted(lines_by_queue.items()):
        if any(p["length"] for p in points):
            high = max(points, key=lambda p: p["length"])
            last_queued = max(i for i, p in enumerate(points) if p["length"])
            drained = points[last_queued + 1] if last_queued + 1 < len(points) else None  # 0 from then to the end
            lines.append(f"Queue {connector} on {host}: highest {high['length']} ({high['time']})"
                         + (f", 0 from {drained['time']} on" if drained else "")
                         + f", last {points[-1]['length']} ({points[-1]['time']}).")
    if timeline.get("events_omitted"):
        lines.append(f"{timeline['events_omitted']['count']} older event(s) are not listed (the newest {EVENTS_CAP} are).")
    return lines
