"""The fleet view's small multiples: one small chart per group of links (the fleet view's groups,
xcon.report_html.fleet: status, finding codes, plan), refusals per hour over the evidence window,
every chart on the same time and count scale (inline SVG, no script).
"""

from __future__ import annotations

from xcon import report_timeline as xtl
from xcon.report_timeline_svg import Axis, COLOURS, CHANGE_COLOURS, _esc

CHART_W, CHART_H, LEFT, BOTTOM = 250, 92, 30, 16
BUCKET_MINUTES = (5, 10, 15, 30, 60, 120, 240, 360, 720, 1440)
MOST_BARS = 48


def _window(links):
    starts = [(l.get("timeline") or {}).get("window", {}).get("start") for l in links]
    ends = [(l.get("timeline") or {}).get("window", {}).get("end") for l in links]
    starts, ends = [s for s in starts if s], [e for e in ends if e]
    return (min(starts), max(ends)) if starts and ends else (None, None)


def _bucket_minutes(axis):
    return next((m for m in BUCKET_MINUTES if axis.span / 60 / m <= MOST_BARS), BUCKET_MINUTES[-1])


def _rates(members, axis, minutes):
    counts = {}
    seconds = minutes * 60
    for link in members:
        for event in (link.get("timeline") or {}).get("events") or []:
            if event["id"] in xtl.REFUSAL_IDS:
                index = int((xtl.parse(event["time"]) - axis.t0).total_seconds() // seconds)
                counts[index] = counts.get(index, 0) + 1
    return {i: n * 60 / minutes for i, n in counts.items()}


def overview(links, groups, check_mode=False):
    """The small multiples of `groups` (``[{"status", "label", "links": [(index, id), ...]}]``, index
    1-based into `links`): ``{"charts": [{"status", "label", "svg", "links": [ids]}], "peak",
    "bucket_minutes", "start", "end"}``, or None when no link has a timeline."""
    start, end = _window(links)
    if not start:
        return None
    axis = Axis(start, end, LEFT, CHART_W - 4)
    minutes = _bucket_minutes(axis)
    members = [[links[index - 1] for index, _id in group["links"]] for group in groups]
    rates = [_rates(m, axis, minutes) for m in members]
    peak = max((max(r.values(), default=0) for r in rates), default=0) or 1
    charts = []
    for group, mine, rate in zip(groups, members, rates):
        charts.append({"status": group["status"], "label": group["label"], "links": [l["id"] for l in mine],
                       "svg": _chart(group["label"], mine, rate, axis, minutes, peak, check_mode)})
    return {"charts": charts, "peak": round(peak, 1), "bucket_minutes": minutes, "start": start, "end": end}


def _chart(label, members, rate, axis, minutes, peak, check_mode):
    base = CHART_H - BOTTOM
    bar_w = (axis.right - axis.left) * minutes * 60 / axis.span
    total = sum(1 for l in members for e in (l.get("timeline") or {}).get("events") or [] if e["id"] in xtl.REFUSAL_IDS)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" '
           f'height="{CHART_H}" role="img" aria-label="{_esc(label)}" data-refusals="{total}">',
           f'<path class="axis" d="M{LEFT} 4V{base}H{CHART_W - 4}"/>',
           f'<text class="tick" x="{LEFT - 3}" y="10" text-anchor="end">{round(peak)}</text>',
           f'<text class="tick" x="{LEFT - 3}" y="{base}" text-anchor="end">0</text>']
    if rate:
        d = "".join(f"M{min(axis.left + bar_w * (i + .5), axis.right):.1f} {base}v-{max(1, round((base - 6) * n / peak, 1))}"
                    for i, n in sorted(rate.items()))
        out.append(f'<path class="bars" stroke="{COLOURS["refused"]}" stroke-width="{max(1.0, bar_w - 1):.1f}" d="{d}">'
                   f'<title>{total} refusal(s) (1290/289/1294/1293/37), per hour in {minutes}-minute bars</title></path>')
    else:
        out.append(f'<text class="none" x="{(LEFT + CHART_W) / 2}" y="{base / 2 + 4}" text-anchor="middle">no refusal in the window</text>')
    if not check_mode:
        times = sorted(c["time"] for l in members for c in (l.get("timeline") or {}).get("changes") or [] if c["kind"] != "restart")
        if times:
            x = axis.x(times[0])
            out.append(f'<path class="change" stroke="{CHANGE_COLOURS["connector"]}" d="M{x} 4V{base}"><title>first change {times[0]}</title></path>')
    for x, label in axis.ticks(most=3):
        out.append(f'<text class="tick" x="{x}" y="{CHART_H - 3}" text-anchor="middle">{_esc(label[-5:])}</text>')
    out.append("</svg>")
    return "\n".join(out)
