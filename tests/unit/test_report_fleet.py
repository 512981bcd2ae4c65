"""The fleet overview's small multiples (xcon.report_fleet) and the report's size with timelines:
one chart per group of links on one scale, and a 300-link report within the fleet-speed issue's
budget (report.json and report.html <= 6 MB at 300 links, <= 2 MB at 100)."""

from __future__ import annotations

import copy
import json
import os
import xml.etree.ElementTree as ET

import pytest

from test_diagnose import Topology
from test_report import links_for
from xcon import report
from xcon import report_fleet as fleet
from xcon import report_html
from xcon import report_timeline as tl

NS = "{http://www.w3.org/2000/svg}"


def _minute(n):
    return f"2026-01-05T{9 + n // 60:02d}:{n % 60:02d}:00Z"


def kb_timeline(inside, outside, refusing=True):
    """Two hours of the KB fault as the lab logs it (a refused triple and 1293/9301 every ten
    minutes, backlog and subsided), then a fix: changes, restart, the queue draining."""
    events = []
    for cycle in range(0, 120, 10):
        if refusing:
            events += [{"time": _minute(cycle + 1), "host": outside, "id": i} for i in (1290, 289, 1294)]
            events += [{"time": _minute(cycle + 1), "host": inside, "id": i} for i in (1293, 9301)]
        events += [{"time": _minute(cycle + 5), "host": outside, "id": 659}, {"time": _minute(cycle + 9), "host": outside, "id": 660}]
    queue = [{"time": _minute(120 + 5 * k), "host": outside, "connector": "TO-INSIDE", "length": max(0, 12 - 4 * k)} for k in range(5)]
    queue += [{"time": _minute(120 + 5 * k), "host": inside, "connector": "TO-OUTSIDE", "length": 0} for k in range(5)]
    changes = [{"time": _minute(121), "step": s, "target": inside, "kind": "connector"} for s in (1, 2, 3, 4)]
    changes += [{"time": _minute(122), "step": "restart", "target": inside, "kind": "restart"}]
    return tl.finish({"audit": {inside: _minute(120), outside: _minute(120)}, "events": sorted(events, key=lambda e: e["time"]),
                      "queue": queue, "changes": changes}, start=_minute(0))


def fleet_links(count):
    """`count` KB links (each its own pair of servers and firewall), the diagnosis's links with timelines."""
    base = links_for(Topology.kb())[0]
    links = []
    for index in range(count):
        link = copy.deepcopy(base)
        inside, outside = f"EXIN{index:03d}", f"EXOUT{index:03d}"
        link.update(id=f"{inside}<->{outside}", inside=dict(link["inside"], host=inside), outside=dict(link["outside"], host=outside))
        link["timeline"] = kb_timeline(inside, outside)
        links.append(link)
    return links


def test_one_chart_per_fleet_group_on_one_scale():
    links = fleet_links(3)
    healthy = links_for(Topology())[0]
    healthy["timeline"] = kb_timeline("EXIN", "EXOUT", refusing=False)
    links.append(healthy)
    groups = report_html.fleet(links)["groups"]  # the fleet view's groups: status, codes, plan
    view = fleet.overview(links, groups)
    assert [c["label"] for c in view["charts"]] == [g["label"] for g in groups]
    assert [c["links"] for c in view["charts"]] == [[l["id"] for l in links[:3]], [healthy["id"]]]
    # small multiples: every chart the same size and the same count scale (the fleet's busiest group)
    for chart in view["charts"]:
        root = ET.fromstring(chart["svg"])
        assert (root.get("width"), root.get("height")) == (str(fleet.CHART_W), str(fleet.CHART_H))
        assert [t.text for t in root.iter(f"{NS}text")][0] == str(round(view["peak"]))
    busy, quiet = (ET.fromstring(c["svg"]) for c in view["charts"])
    listed = sum(1 for l in links[:3] for e in l["timeline"]["events"] if e["id"] in tl.REFUSAL_IDS)
    assert int(busy.get("data-refusals")) == listed and int(quiet.get("data-refusals")) == 0
    # 4 refusals (1290/289/1294, 1293) per link every 10 minutes, 3 links, in 5-minute bars: 12 per bar = 144 per hour
    assert view["bucket_minutes"] == 5 and view["peak"] == 144
    assert "no refusal in the window" in view["charts"][1]["svg"]
    assert fleet.overview([links_for(Topology())[0]], groups[1:]) is None, "no timeline, no chart"


@pytest.mark.parametrize("count, budget", [(100, 2_000_000), (300, 6_000_000)])
def test_fleet_report_with_timelines_stays_within_budget(tmp_path, count, budget):
    built = report.build_report(run_id=f"fleet-{count}", check_mode=False, workaround_requested="auto", hosts_scanned=[],
                                hosts_failed=[], links=fleet_links(count), tool_version="0.1.0")
    paths = report.write_report(built, str(tmp_path), latest=False)  # validated against the schema (conftest)
    sizes = {kind: os.path.getsize(paths[kind]) for kind in ("json", "html")}
    assert all(size <= budget for size in sizes.values()), sizes
    written = json.load(open(paths["json"], encoding="utf-8"))
    assert written == json.loads(json.dumps(built | {"artifacts": written["artifacts"]})), "the compact layout changed a value"
    timeline = written["links"][0]["timeline"]
    assert len(timeline["events"]) == tl.EVENTS_CAP and timeline["events_omitted"]["count"] == 12 * 7 - tl.EVENTS_CAP
    html = open(paths["html"], encoding="utf-8").read()
    assert html.count("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\"") == count and html.count('<figure class="group st-') == 1
