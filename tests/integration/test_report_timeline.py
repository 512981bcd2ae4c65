"""The report's timeline as headless Chromium renders it, on a lab whose events are known: the KB
lab with its clock frozen (time_scale 0; only `advance` and the verification's waiting move it),
so every event the lab logged is one the report must show.

* --check, then the fix, on one lab: per server lane as many events as the lab logged of those ids;
  under --check no change marker and "would change" in words; after the fix the change markers
  come after the last refusal and before the first delivery from the outside server that follows
  it, no refusal after them, and the queue reaches 0.
* 300 links (the fixed KB link's report, repeated): the page has no horizontal overflow, each link
  has its timeline, the overview's small multiples share one size, and the timelines take at most a
  third (JSON) and a quarter (HTML) of the fleet-speed issue's budget (6 MB per file at 300 links).

Chromium absent: skipped on a workstation, failed in CI (env CI=true), as test_report_html.py.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET

from conftest import TOPOLOGIES
from test_report_html import ARTIFACTS, _chromium, _run_chromium
from xcon import report as xreport
from xcon import report_timeline as xtl
from xcon import report_timeline_svg as tsvg

NS = "{http://www.w3.org/2000/svg}"
LANE_IDS = {"EXIN": set(xtl.TIMELINE_IDS), "EXOUT": set(xtl.TIMELINE_IDS)}
COLOUR = {i: (row, colour) for row, _label, colours in tsvg.ROWS for i, colour in colours.items()}  # one tick per (time, row, colour)
TIMELINE_SHARE = {"json": 2_000_000, "html": 1_500_000}  # of the 6 MB per file a 300-link report may take (issue 19)
# Appended to a test copy of the page (the report itself has no script): the layout as rendered.
PROBE = """<script>
var w = document.documentElement.clientWidth, over = [];
document.querySelectorAll('svg, table, figure, pre').forEach(function (e) {
  var r = e.getBoundingClientRect(); if (r.right > w + 1) over.push(e.tagName + '.' + e.getAttribute('class') + ' ' + Math.round(r.right));
});
var sizes = {}; document.querySelectorAll('figure.group svg').forEach(function (e) {
  var r = e.getBoundingClientRect(); sizes[Math.round(r.width) + 'x' + Math.round(r.height)] = 1; });
document.body.setAttribute('data-probe', JSON.stringify({width: w, scroll: document.documentElement.scrollWidth,
  over: over.slice(0, 5), timelines: document.querySelectorAll('svg.timeline').length,
  charts: document.querySelectorAll('figure.group').length, chartSizes: Object.keys(sizes)}));
</script></body>"""


def _timeline_svg(dom):
    """The first link's timeline <svg> of a --dump-dom page, parsed."""
    match = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" class="timeline".*?</svg>', dom, re.S)
    assert match, "the page has no timeline"
    return ET.fromstring(match.group(0))


def _lanes(root):
    return {g.get("data-host"): [p for p in g.iter(f"{NS}path") if "ev" in (p.get("class") or "").split()]
            for g in root.iter(f"{NS}g") if g.get("class") == "lane"}


def _xs(paths, ids=None):
    return [float(mark.split()[0]) for p in paths if ids is None or set(map(int, p.get("data-id").split("/"))) & set(ids)
            for mark in p.get("d").split("M")[1:]]


def _render(chromium, profile, html_path, shot):
    url = "file://" + os.path.abspath(html_path)
    dom = _run_chromium(chromium, profile, "--dump-dom", url).stdout
    os.makedirs(ARTIFACTS, exist_ok=True)
    _run_chromium(chromium, profile, f"--screenshot={os.path.join(ARTIFACTS, shot)}", "--window-size=1400,2200", "--hide-scrollbars", url)
    return dom


def _lab_events(snapshot, window):
    """The lab's own event log: per server, the events of the timeline's ids inside the window."""
    return {name: [e for e in server["events"] if int(e["id"]) in LANE_IDS[name] and window["start"] <= xtl.iso(e["time"]) <= window["end"]]
            for name, server in snapshot["servers"].items()}


def test_timeline_of_the_kb_link_before_and_after_the_fix(lab, tmp_path):
    chromium = _chromium()
    lab.ctl("up", os.path.join(TOPOLOGIES, "kb.yml"), "--inventory", lab.inventory, "--time-scale", "0")
    # five minutes after the inside server's last call (the outside server's queue is backed up), and
    # few enough events that report.json lists every one (no events_omitted)
    lab.advance(35)
    html_path = os.path.join(lab.reports, "latest", "report.html")

    # --check: the same timeline, no change marker, "would change" in words
    run = lab.playbook("--check")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    checked = lab.report()["links"][0]["timeline"]
    assert checked["changes"] == [] and "events_omitted" not in checked
    dom = _render(chromium, str(tmp_path / "chromium"), html_path, "report-timeline-check.png")
    root = _timeline_svg(dom)
    assert not [p for p in root.iter(f"{NS}path") if p.get("class") == "change"], "a change marker under --check"
    assert "would change: 4 change(s) planned" in dom
    lab_events = _lab_events(lab.snapshot(), checked["window"])
    lanes = _lanes(root)
    for host in ("EXIN", "EXOUT"):
        assert sum(int(p.get("data-n")) for p in lanes[host]) == len(lab_events[host]) > 0, host
        # one mark per distinct time and colour (the triple of one minute is one red tick)
        assert sum(p.get("d").count("M") for p in lanes[host]) == len({(xtl.iso(e["time"]), COLOUR[int(e["id"])]) for e in lab_events[host]})

    # the fix: refusals before the change, none after, the queue draining to 0
    before_fix = lab.snapshot()
    run = lab.playbook()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    report = lab.report()
    timeline = report["links"][0]["timeline"]
    assert "events_omitted" not in timeline
    snapshot = lab.snapshot()
    dom = _render(chromium, str(tmp_path / "chromium"), html_path, "report-timeline-fix.png")
    root = _timeline_svg(dom)
    lanes = _lanes(root)
    lab_events = _lab_events(snapshot, timeline["window"])
    for host in ("EXIN", "EXOUT"):
        listed = [e for e in timeline["events"] if e["host"] == host]
        assert len(listed) == len(lab_events[host]), (host, len(listed), len(lab_events[host]))
        assert sum(int(p.get("data-n")) for p in lanes[host]) == len(lab_events[host])
    markers = [p for p in root.iter(f"{NS}path") if p.get("class") == "change"]
    assert sorted((p.get("data-kind"), p.get("data-step")) for p in markers) == sorted(
        [("firewall", "1"), ("connector", "2"), ("connector", "3"), ("firewall", "4"), ("restart", "restart"), ("restart", "restart")])
    refusal_ids = set(xtl.REFUSAL_IDS)
    refusals = [e for name in ("EXIN", "EXOUT") for e in snapshot["servers"][name]["events"] if int(e["id"]) in refusal_ids]
    last_refusal = max(xtl.iso(e["time"]) for e in refusals)
    # The first association of EXOUT that EXIN accepted: EXOUT had none before the fix and has since;
    # it delivered in one of the minutes after the audit's read (the clock stood still until the
    # verification's waiting), none of which comes before the first delivery after that read.
    assert before_fix["servers"]["EXOUT"]["associations"]["outbound_ok"] == 0
    assert snapshot["servers"]["EXOUT"]["associations"]["outbound_ok"] > 0
    audit = timeline["audit"]["EXOUT"]
    flow = next(f for f in snapshot["flows"] if f["from"] == "EXOUT" and f["to"] == "EXIN")
    first_delivery = min(xtl.iso(h["time"]) for h in flow["history"] if xtl.iso(h["time"]) > audit)
    for change in timeline["changes"]:
        assert last_refusal <= change["time"] < first_delivery, (last_refusal, change, audit, first_delivery)
    # in the picture: every refusal mark left of (or at) the first change marker, none after the last
    red = _xs(lanes["EXOUT"], (1290, 289, 1294)) + _xs(lanes["EXIN"], (1293, 37))
    assert red and max(red) <= min(float(p.get("d").split()[0][1:]) for p in markers)  # d="M{x} {top}V{bottom}"
    outside = next(g for g in root.iter(f"{NS}g") if g.get("class") == "queue" and g.get("data-host") == "EXOUT")
    lengths = [int(n) for n in outside.get("data-lengths").split()]
    assert lengths[0] > 0 and lengths[-1] == 0, lengths
    assert [q["length"] for q in timeline["queue"] if q["host"] == "EXOUT"][-1] == 0
    assert "0 refusals after the last" in dom

    # 300 links: readable (no overflow, small multiples of one size) and within the size budget
    fleet = copy.deepcopy(report)
    base = report["links"][0]
    fleet["links"] = []
    for index in range(300):
        link = json.loads(json.dumps(base).replace("EXIN", f"EXIN{index:03d}").replace("EXOUT", f"EXOUT{index:03d}"))
        if index % 3 == 2:  # a second group: no firewall named
            link["firewall"] = None
        fleet["links"].append(link)
    fleet["run_id"] = "fleet-300"
    paths = xreport.write_report(fleet, str(tmp_path / "reports"), latest=False)
    sizes = {k: os.path.getsize(paths[k]) for k in ("json", "html")}
    # what the timelines add (the rest of a link's report is issue 19's to shrink): a third of the JSON's
    # budget, a quarter of the HTML's
    bare = copy.deepcopy(fleet)
    bare["run_id"] = "fleet-300-bare"
    for link in bare["links"]:
        del link["timeline"]
    bare_paths = xreport.write_report(bare, str(tmp_path / "reports"), latest=False)
    added = {k: sizes[k] - os.path.getsize(bare_paths[k]) for k in ("json", "html")}
    assert all(added[k] <= TIMELINE_SHARE[k] for k in added), (added, sizes)
    probe_page = str(tmp_path / "fleet-probe.html")
    with open(paths["html"], encoding="utf-8") as handle:
        page = handle.read()
    assert "<script" not in page
    with open(probe_page, "w", encoding="utf-8") as handle:
        handle.write(page.replace("</body>", PROBE))
    dom = _run_chromium(chromium, str(tmp_path / "chromium"), "--window-size=1280,900", "--dump-dom", "file://" + probe_page).stdout
    probe = json.loads(re.search(r'data-probe="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert probe["timelines"] == 300 and probe["charts"] == 2, probe
    assert probe["scroll"] <= probe["width"] and not probe["over"], probe
    assert len(probe["chartSizes"]) == 1, probe
    shutil.copy(paths["html"], os.path.join(ARTIFACTS, "report-timeline-fleet-300.html"))
