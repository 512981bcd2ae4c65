"""The link timeline of the report (xcon.report_timeline): which events are a link's, reads merged
without double counting, changes placed on the servers' clocks, caps, and its SVG (marks per lane,
change markers, per-bucket counts when dense)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import jsonschema

from test_diagnose import Topology
from xcon import report_timeline as tl
from xcon import report_timeline_svg as tsvg

SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "contracts", "report.schema.json")
LINK = {"id": "EXIN<->EXOUT", "inside": {"host": "EXIN", "connector": "TO-OUTSIDE"}, "outside": {"host": "EXOUT", "connector": "TO-INSIDE"}}
NS = "{http://www.w3.org/2000/svg}"


def _validate(timeline):
    with open(SCHEMA, encoding="utf-8") as handle:
        schema = json.load(handle)
    schema = dict(schema["$defs"]["timeline"], **{"$defs": schema["$defs"]})
    jsonschema.validate(timeline, schema, cls=jsonschema.Draft202012Validator)


def _ev(event_id, time, connector=None, **extra):
    return dict({"id": event_id, "time": time, "connector": connector}, **extra)


def _minute(n):
    return f"2026-01-05T{9 + n // 60:02d}:{n % 60:02d}:00Z"


def test_events_of_the_link_only():
    events = [_ev(1290, _minute(1), "TO-INSIDE"), _ev(1290, _minute(2), "TO-OTHER"), _ev(9301, _minute(3)),
              _ev(1293, _minute(4)), _ev(659, _minute(5)), _ev(9298, _minute(6)), _ev(660, _minute(7), "to-inside")]
    found = tl.link_events(events, "EXOUT", ["TO-INSIDE"])
    # another connector's refusal and the MTA startup are not the link's; a 659 naming no connector neither
    assert [(e["id"], e["time"]) for e in found] == [(1290, _minute(1)), (9301, _minute(3)), (1293, _minute(4)), (660, _minute(7))]
    assert all(e["host"] == "EXOUT" for e in found)


def test_from_audit_reads_the_kb_evidence():
    topo = Topology.kb()
    servers = topo.servers()
    servers["EXOUT"]["evidence"]["queues"] = {"TO-INSIDE": 16}
    timeline = tl.from_audit(LINK, servers)
    ids = sorted(e["id"] for e in timeline["events"])
    assert ids == sorted([1290, 289, 1294] * 3 + [1293, 9301])
    assert {(q["host"], q["connector"], q["length"]) for q in timeline["queue"]} == {
        ("EXOUT", "TO-INSIDE", 16)} | {("EXIN", "TO-OUTSIDE", n) for n in servers["EXIN"]["evidence"]["queues"].values()}
    assert {q["time"] for q in timeline["queue"]} == {tl.iso(servers["EXOUT"]["evidence"]["now"])}
    assert timeline["audit"] == {"EXIN": tl.iso(servers["EXIN"]["evidence"]["now"]), "EXOUT": tl.iso(servers["EXOUT"]["evidence"]["now"])}
    assert timeline["window"]["start"] == "2024-01-01T10:00:00Z" and timeline["changes"] == []
    _validate(timeline)


def test_a_read_twice_counts_once_but_two_in_one_read_stay_two():
    first = [{"time": _minute(1), "host": "EXIN", "id": 9301}] * 2 + [{"time": _minute(1), "host": "EXIN", "id": 1293}]
    again = [{"time": _minute(1), "host": "EXIN", "id": 9301}] * 2 + [{"time": _minute(9), "host": "EXIN", "id": 1293}]
    merged = tl._merge_events([first, again])  # pylint: disable=protected-access
    assert [(e["time"], e["id"]) for e in merged] == [(_minute(1), 1293), (_minute(1), 9301), (_minute(1), 9301), (_minute(9), 1293)]


def test_polls_add_events_queue_and_startups():
    audit = {"now": _minute(60), "since": _minute(0), "events": [_ev(1290, _minute(55), "TO-INSIDE")], "queues": {"TO-INSIDE": 12}}
    link = dict(LINK, timeline=tl.from_audit(LINK, {"EXOUT": {"evidence": audit}}))
    poll1 = {"EXOUT": {"now": _minute(62), "events": [_ev(1290, _minute(55), "TO-INSIDE"), _ev(9298, _minute(61))], "queues": {"TO-INSIDE": 12}},
             "EXIN": {"now": _minute(62), "events": [], "queues": {}}}
    poll2 = {"EXOUT": {"now": _minute(67), "events": [_ev(1290, _minute(55), "TO-INSIDE"), _ev(9298, _minute(61))], "queues": {}},
             "EXIN": {"now": _minute(67), "events": [], "queues": {}}}
    polls = tl.from_polls(link, [("2026-12-02T11:00:01.5Z", poll1), ("2026-12-02T11:00:03.5Z", poll2)])
    assert polls["startups"] == [{"time": _minute(61), "host": "EXOUT"}]
    done = tl.complete(link, polls)
    assert [e["time"] for e in done["events"]] == [_minute(55)], "the refusal the audit and the polls read is listed once"
    # the outside connector's queue at each read; no counter instance after the restart reads as 0
    assert [(q["time"], q["length"]) for q in done["queue"] if q["host"] == "EXOUT"] == [(_minute(60), 12), (_minute(62), 12), (_minute(67), 0)]
    assert done["window"] == {"start": _minute(0), "end": _minute(67)}
    _validate(done)


def test_changes_are_placed_between_the_reads_that_bracket_them():
    audit = {"EXIN": _minute(60), "EXOUT": _minute(60)}
    link = dict(LINK, timeline={"audit": audit, "events": [], "queue": [], "changes": []})
    # the lab's clock runs 60x: 10 controller seconds are 10 server minutes
    polls = {"reads": [{"host": h, "time": _minute(70), "at": "2026-12-02T11:00:10Z"} for h in ("EXIN", "EXOUT")],
             "startups": [{"time": _minute(69), "host": "EXIN"}]}
    applied = [{"at": "2026-12-02T11:00:02Z", "step": 1, "target": "FW1", "kind": "firewall"},
               {"at": "2026-12-02T11:00:05Z", "step": 2, "target": "EXIN", "kind": "connector"},
               {"at": "2026-12-02T11:00:09.9Z", "step": 3, "target": "EXOUT", "kind": "connector"}]
    marks = tl.place_changes(link, applied, {"EXIN": "2026-12-02T11:00:09.5Z"}, polls, "2026-12-02T11:00:00Z")
    assert [(m["step"], m["time"]) for m in marks] == [
        (1, _minute(62)), (2, _minute(65)),
        (3, _minute(69)),          # interpolated 69:54, but no change comes after its link's MTA restart
        ("restart", _minute(69))]  # the MTA's own startup event
    assert marks[-1] == {"time": _minute(69), "step": "restart", "target": "EXIN", "kind": "restart"}
    # a change the controller saw before the audit's anchor is never drawn before the audit's read
    early = tl.place_changes(link, [{"at": "2026-12-02T10:59:00Z", "step": 1, "target": "EXIN", "kind": "connector"}], {}, polls,
                             "2026-12-02T11:00:00Z")
    assert early[0]["time"] == _minute(60)


def test_caps_keep_the_newest_and_say_what_was_left_out():
    events = [{"time": _minute(i % 600), "host": "EXOUT", "id": (1290, 289, 1294)[i % 3]} for i in range(400)]
    events.sort(key=lambda e: e["time"])
    queue = [{"time": _minute(i), "host": "EXOUT", "connector": "TO-INSIDE", "length": i} for i in range(300)]
    timeline = tl.finish({"audit": {}, "events": events, "queue": queue, "changes": []})
    assert len(timeline["events"]) == tl.EVENTS_CAP and timeline["events"] == events[-tl.EVENTS_CAP:]
    omitted = timeline["events_omitted"]
    assert omitted["count"] == 400 - tl.EVENTS_CAP and sum(omitted["by_id"].values()) == omitted["count"]
    assert omitted["first"] == events[0]["time"] and omitted["last"] == events[-tl.EVENTS_CAP - 1]["time"]
    assert len(timeline["queue"]) == tl.QUEUE_CAP and timeline["queue"][0] == queue[0] and timeline["queue"][-1] == queue[-1]
    _validate(timeline)


def _lanes(svg_text):
    root = ET.fromstring(svg_text)
    lanes = {}
    for lane in root.iter(f"{NS}g"):
        if lane.get("class") == "lane":
            paths = [p for p in lane.iter(f"{NS}path") if "ev" in (p.get("class") or "").split()]
            lanes[lane.get("data-host")] = paths
    return root, lanes


def test_svg_marks_per_lane_and_change_markers():
    events = [{"time": _minute(m), "host": "EXOUT", "id": i} for m in (1, 11, 21) for i in (1290, 289, 1294)]
    events += [{"time": _minute(m), "host": "EXIN", "id": i} for m in (1, 11, 21) for i in (1293, 9301)]
    timeline = tl.finish({"audit": {"EXIN": _minute(30), "EXOUT": _minute(30)}, "events": events,
                          "queue": [{"time": _minute(30), "host": "EXOUT", "connector": "TO-INSIDE", "length": 6},
                                    {"time": _minute(40), "host": "EXOUT", "connector": "TO-INSIDE", "length": 0}],
                          "changes": [{"time": _minute(32), "step": 1, "target": "EXIN", "kind": "connector"},
                                      {"time": _minute(33), "step": "restart", "target": "EXIN", "kind": "restart"}]},
                         start=_minute(0))
    root, lanes = _lanes(tsvg.svg(timeline, [("EXIN", "inside"), ("EXOUT", "outside")]))
    for host, count, colours in (("EXIN", 6, 2), ("EXOUT", 9, 1)):
        assert sum(int(p.get("data-n")) for p in lanes[host]) == count
        # a tick per distinct time and colour: the triple 1290/289/1294 of one minute is one red tick
        assert sum(p.get("d").count("M") for p in lanes[host]) == 3 * colours
    assert [p.get("data-id") for p in lanes["EXOUT"]] == ["1290/289/1294"] and [p.get("data-id") for p in lanes["EXIN"]] == ["1293/37", "9301"]
    changes = [g for g in root.iter(f"{NS}path") if g.get("class") == "change"]
    assert [(g.get("data-kind"), g.get("data-step")) for g in changes] == [("connector", "1"), ("restart", "restart")]
    last_refusal = max(float(mark.split()[0]) for p in lanes["EXOUT"] for mark in p.get("d").split("M")[1:])
    assert all(float(g.get("d").split()[0][1:]) > last_refusal for g in changes)  # d="M{x} {top}V{bottom}"
    queue = next(g for g in root.iter(f"{NS}g") if g.get("class") == "queue")
    assert queue.get("data-lengths") == "6 0"
    # --check: the same picture without any change marker
    check = dict(timeline, changes=[])
    root, check_lanes = _lanes(tsvg.svg(check, [("EXIN", "inside"), ("EXOUT", "outside")]))
    assert not [g for g in root.iter(f"{NS}path") if g.get("class") == "change"]
    assert {h: sum(int(p.get("data-n")) for p in ps) for h, ps in check_lanes.items()} == {"EXIN": 6, "EXOUT": 9}


def test_a_dense_row_is_counted_per_bucket():
    events = [{"time": f"2026-01-05T{h:02d}:{m:02d}:00Z", "host": "EXOUT", "id": 1290} for h in range(24) for m in range(0, 60, 5)]
    timeline = tl.finish({"audit": {}, "events": events, "queue": [], "changes": []})
    assert len(timeline["events"]) == tl.EVENTS_CAP
    svg = tsvg.svg(timeline, [("EXIN", "inside"), ("EXOUT", "outside")])
    _root, lanes = _lanes(svg)
    (bars,) = lanes["EXOUT"]
    assert "bars" in bars.get("class") and int(bars.get("data-n")) == tl.EVENTS_CAP
    assert 1 < bars.get("d").count("M") <= tsvg.BUCKETS  # a bar per bucket with events, not a tick per event
    assert "older events not listed" in svg
    assert len(svg) < 8000, len(svg)


def test_a_long_window_gives_the_run_its_own_scale():
    timeline = tl.finish({"audit": {"EXOUT": "2026-01-05T23:00:00Z"}, "events": [],
                          "queue": [{"time": "2026-01-05T23:10:00Z", "host": "EXOUT", "connector": "TO-INSIDE", "length": 0}],
                          "changes": []}, start="2026-01-05T00:00:00Z")
    axis = tsvg.Axis(timeline["window"]["start"], timeline["window"]["end"], 0, 1000, tsvg.focus_time(timeline))
    assert axis.break_x() == 600.0
    assert axis.x("2026-01-05T23:00:00Z") > 600 and axis.x("2026-01-05T23:10:00Z") == 1000
    assert [x for x, _label in axis.ticks()] == sorted(x for x, _label in axis.ticks())


def test_backlog_events_carry_queue_lengths():
    events = [_ev(659, _minute(5), "TO-INSIDE", count="10"), _ev(660, _minute(9), "to-inside", count=0),
              _ev(659, _minute(6), "TO-OTHER", count=30), _ev(659, _minute(7), "TO-INSIDE")]
    audit = {"now": _minute(10), "since": _minute(0), "events": events, "queues": {"TO-INSIDE": 3}}
    timeline = tl.from_audit(LINK, {"EXOUT": {"evidence": audit}})
    assert timeline["events"] == [{"time": _minute(5), "host": "EXOUT", "id": 659, "connector": "TO-INSIDE", "length": 10},
                                  {"time": _minute(7), "host": "EXOUT", "id": 659},   # no count: no reading
                                  {"time": _minute(9), "host": "EXOUT", "id": 660, "connector": "TO-INSIDE", "length": 0}]
    _validate(timeline)
    # the queue line: the MTA's own counts and the counter read (another connector's is not this queue)
    lines = tl.queue_lines(timeline)
    assert list(lines) == [("EXOUT", "TO-INSIDE")]
    assert [(p["time"], p["length"]) for p in lines[("EXOUT", "TO-INSIDE")]] == [(_minute(5), 10), (_minute(9), 0), (_minute(10), 3)]
    root, _lanes_ = _lanes(tsvg.svg(timeline, [("EXOUT", "outside")]))
    assert next(g for g in root.iter(f"{NS}g") if g.get("class") == "queue").get("data-lengths") == "10 0 3"


def test_text_from_servers_stays_inert_in_the_svg():
    host = "EX\x1b[2J<IN>&"
    timeline = tl.finish({"audit": {}, "events": [{"time": _minute(1), "host": host, "id": 1290}],
                          "queue": [{"time": _minute(2), "host": host, "connector": "TO-\x07X", "length": 1}], "changes": []})
    root, lanes = _lanes(tsvg.svg(timeline, [(host, "inside")]))  # still XML: a control character is not
    (name,) = lanes
    assert "\x1b" not in name and "<IN>&" in name and sum(int(p.get("data-n")) for p in lanes[name]) == 1


def test_the_words_under_the_picture():
    queue = [{"time": _minute(m), "host": "EXOUT", "connector": "TO-INSIDE", "length": n} for m, n in ((7, 14), (10, 0), (14, 8), (20, 0), (25, 0))]
    events = [{"time": _minute(1), "host": "EXOUT", "id": 1290}, {"time": _minute(11), "host": "EXIN", "id": 1293}]
    timeline = {"events": events, "queue": queue, "changes": [{"time": _minute(12), "step": 1, "target": "EXIN", "kind": "connector"},
                                                              {"time": _minute(14), "step": "restart", "target": "EXIN", "kind": "restart"}]}
    link = {"timeline": timeline, "changes": [{}, {}]}
    words = tl.sentences(link, False)
    assert words[0] == f"2 refusals (1290/289/1294/1293/37) listed, the last at {_minute(11)}."
    assert words[1] == f"1 change(s) from {_minute(12)}, 1 MTA restart(s); 0 refusals after the last ({_minute(14)})."
    # emptied by the inside server's call before the fix, then for good after it
    assert words[2] == f"Queue TO-INSIDE on EXOUT: highest 14 ({_minute(7)}), 0 from {_minute(20)} on, last 0 ({_minute(25)})."
    assert tl.sentences(dict(link, timeline=dict(timeline, changes=[])), True)[1] == \
        "would change: 2 change(s) planned; check mode made none, so no change is marked."
