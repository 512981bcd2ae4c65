"""The report's timeline pictures as inline SVG (no script: they work offline and in a mail client).

``svg(timeline, ...)``: one link's timeline (xcon.report_timeline) - the evidence window on the
x-axis in UTC, one lane per server with a row of marks for the calling side's refusals
(1290/289/1294), one for the refusing side's (1293/37, and 9301), one for the backlog events
(659/660), the queue length as a line, and a vertical marker per change applied and MTA restart.
A row with more than MAX_MARKS events draws per-bucket counts (bars) instead of one mark per event.
``fleet(groups, ...)``: one small chart per group of links (refusals per hour), all on one scale.
Colours are the topology picture's (xcon.topology): refused red, working green, server blue,
firewall orange, unknown grey.
"""

from __future__ import annotations

import datetime as _dt

from xcon import report_timeline as xtl
# The topology picture's path colours, and its escaping (text from servers made inert, then XML-escaped)
from xcon.topology import _COLOURS as PATH_COLOURS, _esc

COLOURS = {"refused": PATH_COLOURS["refused"], "working": PATH_COLOURS["working"], "unknown": PATH_COLOURS["unknown"],
           "server": "#2b579a", "firewall": "#e65100", "backlog": "#f9a825", "restart": "#424242"}
ROWS = (  # (row name, label, {event id: colour})
    ("calls", "refused calls 1290/289/1294", {1290: COLOURS["refused"], 289: COLOURS["refused"], 1294: COLOURS["refused"]}),
    ("refusals", "refusals 1293/37 \u00b7 9301", {1293: COLOURS["refused"], 37: COLOURS["refused"], 9301: COLOURS["unknown"]}),
    ("backlog", "backlog 659 \u00b7 subsided 660", {659: COLOURS["backlog"], 660: COLOURS["working"]}),
)
MAX_MARKS = 30          # per row; beyond it the row shows per-bucket counts
BUCKETS = 60            # buckets across the window when counting
WIDTH, LEFT, RIGHT = 780, 160, 14
ROW_H, LANE_PAD = 15, 8
CHANGE_COLOURS = {"firewall": COLOURS["firewall"], "connector": COLOURS["server"], "restart": COLOURS["restart"]}
FOCUS_SHARE = 0.4     # of the width, for the audit-to-end part of a long window
TICK_MINUTES = (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)


class Axis:
    """Times of one window -> x positions between `left` and `right`.  With `focus` (a time inside
    the window) the part from `focus` on gets FOCUS_SHARE of the width when it would get less: the
    change and the verification's reads stay readable in a long evidence window; the picture marks
    where its scale changes."""

    def __init__(self, start, end, left, right, focus=None):
        self.t0 = xtl.parse(start)
        span = (xtl.parse(end) - self.t0).total_seconds()
        self.span = span if span > 0 else 60.0
        self.left, self.right = left, right
        self.brk = None
        if focus:
            offset = (xtl.parse(focus) - self.t0).total_seconds()
            if 0 < offset and (self.span - offset) / self.span < FOCUS_SHARE:
                self.brk = (offset, left + (right - left) * (1 - FOCUS_SHARE))

    def _x(self, offset):
        offset = min(max(offset, 0.0), self.span)
        if self.brk is None:
            return self.left + (self.right - self.left) * offset / self.span
        at, x = self.brk
        if offset <= at:
            return self.left + (x - self.left) * offset / at
        return x + (self.right - x) * (offset - at) / (self.span - at)

    def x(self, time):
        return round(self._x((xtl.parse(time) - self.t0).total_seconds()))  # whole pixels: a fleet's page stays small

    def break_x(self):
        return round(self.brk[1], 1) if self.brk else None

    def ticks(self, most=8):
        """(x, label) of round times: HH:MM, with the date at the first tick and at each new day."""
        if self.brk is None:
            return self._ticks(0, self.span, most)
        at, x = self.brk
        share = (x - self.left) / (self.right - self.left)
        first = self._ticks(0, at, max(2, round(most * share)))
        day = first[-1][1][-16:-6] if first and len(first[-1][1]) > 5 else xtl.iso(self.t0)[:10]
        return first + self._ticks(at, self.span, max(2, round(most * (1 - share))), skip_near=at, day=day)

    def _ticks(self, begin, end, most, skip_near=None, day=None):
        span = end - begin
        step = next((m for m in TICK_MINUTES if span / 60 / m <= most), TICK_MINUTES[-1]) * 60
        origin = self.t0.timestamp()
        t = (origin + begin) // step * step
        t += step if t < origin + begin else 0
        out = []
        while t <= origin + end:
            when = xtl.iso(_dt.datetime.fromtimestamp(t, _dt.timezone.utc))
            label = when[11:16] if when[:10] == day else f"{when[:10]} {when[11:16]}"
            day = when[:10]
            if skip_near is None or t - origin - skip_near > step / 3:
                out.append((self.x(when), label))
            t += step
        return out


def _marks(events, axis, y, colours):
    """One path per colour of a row (the calling side's triple shares one): a tick per distinct
    time, or per-bucket bars when the row has more than MAX_MARKS events.  ``data-n``: the events
    it stands for."""
    parts = []
    counting = len(events) > MAX_MARKS
    width = (axis.right - axis.left) / BUCKETS
    for colour in dict.fromkeys(colours.values()):
        ids = [i for i, c in colours.items() if c == colour]
        mine = [e for e in events if e["id"] in ids]
        if not mine:
            continue
        label = "/".join(str(i) for i in ids)
        if counting:
            buckets = {}
            for e in mine:
                index = min(int((axis.x(e["time"]) - axis.left) / width), BUCKETS - 1)
                buckets[index] = buckets.get(index, 0) + 1
            top = max(buckets.values())
            d = "".join(f"M{axis.left + width * (i + .5):.1f} {y + ROW_H - 2}v-{max(2, round((ROW_H - 4) * n / top, 1))}"
                        for i, n in sorted(buckets.items()))
            parts.append(f'<path class="ev bars" data-id="{label}" data-n="{len(mine)}" '
                         f'stroke="{colour}" stroke-width="{max(1.0, width - 1):.1f}" d="{d}"><title>{len(mine)} event(s) {label}, '
                         f'counted per {round(axis.span / 60 / BUCKETS, 1)} min</title></path>')
        else:
            xs = list(dict.fromkeys(axis.x(e["time"]) for e in mine))
            d = "".join(f"M{x} {y + 2}v{ROW_H - 4}" for x in xs)
            parts.append(f'<path class="ev" data-id="{label}" data-n="{len(mine)}" stroke="{colour}" d="{d}"/>')
    return parts


def _queue(points, axis, top, bottom, peak):
    """The queue line of one connector in its server's lane (0 at the lane's bottom)."""
    scale = (bottom - top) / peak if peak else 0
    coords = [(axis.x(p["time"]), round(bottom - p["length"] * scale)) for p in points]
    coords = coords * 2 if len(coords) == 1 else coords  # one reading: a dot (round caps)
    lengths = " ".join(str(p["length"]) for p in points)
    first = points[0]
    out = [f'<g class="queue" data-host="{_esc(first["host"])}" data-connector="{_esc(first["connector"])}" data-lengths="{lengths}">',
           f'<polyline points="{" ".join(f"{x},{y}" for x, y in coords)}"/>']
    x, y = coords[-1]
    out.append(f'<text class="qv" x="{x - 3}" y="{y - 3}" text-anchor="end">{points[-1]["length"]}</text></g>')
    return "".join(out)


def _change_labels(changes, axis, y):
    """One label per cluster of markers closer than 40 px: "1 2 3 4 R"."""
    out, cluster = [], []

    def flush():
        if cluster:
            text = " ".join("R" if c["kind"] == "restart" else str(c["step"]) for c in cluster)
            x = axis.x(cluster[0]["time"])
            anchor = "end" if x > axis.right - 60 else "start"
            out.append(f'<text class="chl" x="{x - 3 if anchor == "end" else x + 3}" y="{y}" text-anchor="{anchor}">{_esc(text)}</text>')

    for change in changes:
        if cluster and axis.x(change["time"]) - axis.x(cluster[0]["time"]) > 40:
            flush()
            cluster = []
        cluster.append(change)
    flush()
    return out


def focus_time(timeline):
    """Where the picture's scale may change: a little before the audit's read, when the run went on
    after it (verification reads, changes); None otherwise."""
    window, audit = timeline.get("window") or {}, sorted((timeline.get("audit") or {}).values())
    if not audit or not window.get("end") or window["end"] <= audit[0]:
        return None
    first, end = xtl.parse(audit[0]), xtl.parse(window["end"])
    return xtl.iso(first - (end - first) / 2)


def svg(timeline, hosts, uid="t", note=""):
    """One link's timeline as inline SVG; `hosts` is ``[(server, role), ...]`` (one lane each)."""
    window = timeline.get("window") or {}
    if not window.get("start"):
        return ""
    axis = Axis(window["start"], window["end"], LEFT, WIDTH - RIGHT, focus_time(timeline))
    lane_h = ROW_H * (len(ROWS) + 1) + LANE_PAD
    top = 34
    height = top + lane_h * len(hosts) + 54
    bottom = top + lane_h * len(hosts)
    events = timeline.get("events") or []
    lines = xtl.queue_lines(timeline)
    queue = [p for points in lines.values() for p in points]
    peak = max((q["length"] for q in queue), default=0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
           f'height="{height}" role="img" aria-label="timeline {uid}">',
           f'<text class="caption" x="4" y="14">Over time (UTC, each server\'s clock): '
           f'{_esc(window["start"][:16].replace("T", " "))} \u2013 {_esc(window["end"][:16].replace("T", " "))}</text>']
    omitted = timeline.get("events_omitted")
    if omitted:
        x0, x1 = axis.x(omitted["first"]), axis.x(omitted["last"])
        out.append(f'<rect class="omitted" x="{x0}" y="{top}" width="{max(x1 - x0, 2)}" height="{bottom - top}"><title>'
                   f'{omitted["count"]} older events not listed (report.json keeps the newest {xtl.EVENTS_CAP})</title></rect>')
    for index, (host, role) in enumerate(hosts):
        y0 = top + lane_h * index
        mine = [e for e in events if e["host"] == host]
        out.append(f'<g class="lane" data-host="{_esc(host)}" data-n="{len(mine)}">')
        out.append(f'<rect class="lane-bg" x="{LEFT}" y="{y0}" width="{WIDTH - RIGHT - LEFT}" height="{lane_h - LANE_PAD}"/>')
        out.append(f'<text class="host" x="4" y="{y0 + 12}">{_esc(host)} <tspan class="role">({_esc(role)} server)</tspan></text>')
        # the row labels once, then the same labels moved down for each further lane
        # (presentation attributes, not CSS: a <use> copy is not styled by the page's selectors)
        out.append(f'<g id="rows-{uid}" font-size="10" fill="#666" text-anchor="end">' + "".join(f'<text class="row" x="{LEFT - 4}" y="{top + (row + 2) * ROW_H - 4}">{_esc(label)}</text>'
                                               for row, (_name, label, _colours) in enumerate(ROWS)) + "</g>"
                   if index == 0 else f'<use href="#rows-{uid}" y="{y0 - top}"/>')
        for row, (_name, _label, colours) in enumerate(ROWS):
            y = y0 + (row + 1) * ROW_H
            out += _marks([e for e in mine if e["id"] in colours], axis, y, colours)
        for (where, _connector), points in sorted(lines.items()):
            if where == host and any(p["length"] for p in points):  # a queue that stayed empty: no line on the lane's foot
                out.append(_queue(points, axis, y0 + 4, y0 + lane_h - LANE_PAD - 2, peak))
        out.append("</g>")
    if axis.break_x() is not None:
        x = axis.break_x()
        out.append(f'<path class="brk" d="M{x} {top - 4}V{bottom + 4}"/><text class="brk" x="{x - 3}" y="{bottom + 28}" '
                   f'text-anchor="end">larger scale from here \u2192</text>')
    changes = timeline.get("changes") or []
    for change in changes:
        x = axis.x(change["time"])
        colour = CHANGE_COLOURS.get(change["kind"], COLOURS["server"])
        what = "MTA restart" if change["kind"] == "restart" else f"step {change['step']}"
        dash = ' stroke-dasharray="5 3"' if change["kind"] == "restart" else ""
        out.append(f'<path class="change" data-kind="{_esc(change["kind"])}" data-step="{_esc(change["step"])}" '
                   f'd="M{x} {top - 12}V{bottom}" stroke="{colour}"{dash}><title>{_esc(what)} {_esc(change["target"])} '
                   f'{_esc(change["time"][11:19])}</title></path>')
    out += _change_labels(changes, axis, top - 14)
    out.append(f'<path class="axis" d="M{LEFT} {bottom}H{WIDTH - RIGHT}"/>')
    ticks = axis.ticks()
    out.append(f'<path class="tick" d="{"".join(f"M{x} {bottom}v4" for x, _label in ticks)}"/>')
    out += [f'<text class="tick" x="{x}" y="{bottom + 15}">{_esc(label)}</text>' for x, label in ticks]
    legend = (f"blue: queue (0 at a lane's foot, {peak} at its top)" if queue else "queue: not read") + \
        ("; lines: steps (blue connector, orange firewall), dashed R: MTA restart" if changes else "")
    out.append(f'<text class="legend" x="4" y="{height - 6}">{_esc(note or legend)}</text>')
    out.append("</svg>")
    return "\n".join(out)
