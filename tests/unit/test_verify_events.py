"""xcon.verify_reads.EventUnion: the verification reads each server's events from its previous read
on (its own clock) and judges the union - the same events as re-reading everything from the audit."""

from __future__ import annotations

import datetime as _dt
import random

from xcon.actions.verify import ActionModule as Verify
from xcon.verify_reads import EventUnion

T0 = _dt.datetime(2026, 1, 5, 10, 0, 0, tzinfo=_dt.timezone.utc)
LINK = {"id": "EXIN<->EXOUT", "inside": {"host": "EXIN", "connector": "TO-OUTSIDE"},
        "outside": {"host": "EXOUT", "connector": "TO-INSIDE"}}


def _iso(seconds):
    return (T0 + _dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Log:
    """A server's event log as op_event_query reads it: entries in the order written (record
    numbers), each stamped with its TimeGenerated; a read returns those stamped at or after `since`
    and the server's `now` (whole seconds)."""

    def __init__(self, offset=0):
        self.offset, self.entries = offset, []

    def write(self, event_id, generated, record=None):
        self.entries.append({"id": event_id, "time": _iso(generated + self.offset), "record": record or len(self.entries) + 1})

    def read(self, now, since):
        return {"now": _iso(now + self.offset), "events": [dict(e) for e in self.entries if since is None or e["time"] >= since],
                "queues": {"TO-INSIDE": 0}, "service": {"state": "Running"}}


def _read(union, name, log, now):
    return union.add(name, log.read(now, union.since(name)))


def test_a_refusal_logged_between_two_reads_is_in_the_union():
    log, union = Log(), EventUnion({"EXIN": _iso(-600)}, 60)
    log.write(1293, -300)                       # before the change: read by the baseline
    first = _read(union, "EXIN", log, 0)
    assert [e["id"] for e in first["events"]] == [1293]
    assert union.since("EXIN") == _iso(-60)     # the next read starts a minute before the baseline's time
    log.write(1293, 600)                        # in the window, between the reads
    second = _read(union, "EXIN", log, 1200)
    assert [(e["id"], e["time"]) for e in second["events"]] == [(1293, _iso(-300)), (1293, _iso(600))]


def test_an_entry_read_twice_counts_once_and_two_in_one_second_stay_two():
    log, union = Log(), EventUnion({}, 60)
    log.write(1290, 0)
    log.write(1290, 0)                          # the same second, another entry
    _read(union, "EXOUT", log, 0)
    both = _read(union, "EXOUT", log, 30)       # the overlap reads both again
    assert [e["record"] for e in both["events"]] == [1, 2]


def test_an_entry_written_after_a_read_with_an_earlier_time_is_caught_within_the_overlap():
    log, union = Log(), EventUnion({}, 60)
    _read(union, "EXIN", log, 100)
    log.write(1293, 95)                         # submitted at 95 s, written after the read at 100 s
    late = _read(union, "EXIN", log, 1300)
    assert [e["time"] for e in late["events"]] == [_iso(95)]


def test_each_server_is_read_from_its_own_clock_and_an_unreadable_one_keeps_its_place():
    slow, fast, union = Log(offset=-3600), Log(offset=420), EventUnion({}, 60)
    _read(union, "EXIN", slow, 0)
    _read(union, "EXOUT", fast, 0)
    assert union.since("EXIN") == _iso(-3660) and union.since("EXOUT") == _iso(360)
    # EXOUT is not read at 20 min: its next read still starts at its own last time
    slow.write(1293, 700)
    fast.write(1290, 700)
    _read(union, "EXIN", slow, 1200)
    assert union.since("EXOUT") == _iso(360)
    assert [e["id"] for e in _read(union, "EXOUT", fast, 1500)["events"]] == [1290]


def test_the_first_read_starts_at_the_audit_and_no_read_before_it():
    union = EventUnion({"EXIN": _iso(-30)}, 60)
    assert union.since("EXIN") == _iso(-30) and union.since("EXOUT") is None
    union.add("EXIN", Log().read(0, _iso(-30)))
    assert union.since("EXIN") == _iso(-30)     # a minute before the baseline is before the audit


def test_entries_without_a_record_number_count_per_read():
    union = EventUnion({}, 60)
    event = {"id": 1290, "time": _iso(0), "message": "refused"}
    union.add("EXOUT", {"now": _iso(10), "events": [event, dict(event)]})
    assert len(union.add("EXOUT", {"now": _iso(20), "events": [dict(event), dict(event)]})["events"]) == 2


def test_the_judge_sees_what_a_read_of_everything_since_the_audit_shows():
    # random logs (late writes within the overlap, entries in one second, clock offsets), random read
    # times and failed reads: the union judged after every read equals a full re-read from the audit
    rng = random.Random(19)
    for _ in range(200):
        logs = {"EXIN": Log(rng.randint(-600, 600)), "EXOUT": Log(rng.randint(-600, 600))}
        audit = {name: _iso(-900 + log.offset) for name, log in logs.items()}
        union, started, now = EventUnion(audit, 60), {}, 0
        for _read_no in range(rng.randint(1, 6)):
            for name, log in logs.items():
                for _ in range(rng.randint(0, 3)):
                    log.write(rng.choice((1290, 289, 1294, 1293, 9301, 660)), now - rng.randint(0, 50))
            now += rng.choice((1, 30, 300, 1200))
            readable = {name: log for name, log in logs.items() if rng.random() > 0.2}
            union_ev = {name: _read(union, name, log, now) for name, log in readable.items()}
            full = {name: log.read(now, audit[name]) for name, log in readable.items()}
            for name, ev in union_ev.items():
                started.setdefault(name, ev["now"])
                assert sorted(e["record"] for e in ev["events"]) == sorted(e["record"] for e in full[name]["events"])
            if set(started) == set(logs):
                judged = [Verify._judge(LINK, evidence, started, 0, {}, waited=20, window=20)["details"]
                          for evidence in (union_ev, full)]
                assert judged[0] == judged[1]


def test_a_read_cut_at_the_event_limit_does_not_move_where_the_next_read_starts():
    # op_event_query walks the log newest first and stops at its limit: the entries of the span
    # older than the last one returned were not read, so the next read must cover them again.
    union = EventUnion({"EXOUT": _iso(0)}, 60)
    union.add("EXOUT", {"now": _iso(600), "events": [{"id": 1290, "time": _iso(300), "record": 1}]})
    assert union.since("EXOUT") == _iso(540)
    union.add("EXOUT", {"now": _iso(1200), "events": [{"id": 1290, "time": _iso(1100), "record": 9}], "events_truncated": True})
    assert union.since("EXOUT") == _iso(540)
