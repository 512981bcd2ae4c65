"""xcon.verify_reads: when the verification reads (issue 19: no read that cannot decide anything)."""

from __future__ import annotations

from xcon.verify_reads import next_wait


def _schedule(first, poll, timeout, failing=()):
    """The (minute, full read?) of every read after the baseline, until the timeout; `failing`: the
    minutes at which a read of some server fails (it is probed again before the first decision)."""
    waited, reads, probing = 0, [], 0 in failing
    while waited < timeout:
        step, full = next_wait(waited, first, poll, timeout, probing)
        assert step > 0
        waited += step
        reads.append((waited, full))
        probing = waited in failing
    return reads


def test_the_first_read_after_the_baseline_is_when_the_shortest_window_ends():
    # the default window (2 x 600 s) and poll interval: 0, 20 - not 0, 5, 10, 15, 20
    assert _schedule(20, 5, 60)[:3] == [(20, True), (25, True), (30, True)]
    # then every poll interval until the timeout, the last read at the timeout itself
    assert _schedule(20, 5, 60)[-2:] == [(55, True), (60, True)]
    assert _schedule(20, 7, 30) == [(20, True), (27, True), (30, True)]
    # a window that is the timeout: one read at its end
    assert _schedule(60, 5, 60) == [(60, True)]
    # a window shorter than a poll interval (settle only): read at its end, then every interval
    assert _schedule(3, 5, 13) == [(3, True), (8, True), (13, True)]


def test_a_server_that_failed_its_read_is_read_again_every_poll_interval_before_the_window():
    # unreadable at the baseline: probed at 5, 10, 15 (two failures in a row end the verification
    # early, as every five-minute poll did before), the full read at 20
    assert _schedule(20, 5, 60, failing=(0, 5, 10, 15))[:4] == [(5, False), (10, False), (15, False), (20, True)]
    # readable again at 5: no more probes until the window ends
    assert _schedule(20, 5, 60, failing=(0,))[:2] == [(5, False), (20, True)]
    # a probe never replaces the read that decides
    assert _schedule(7, 5, 60, failing=(0, 5))[:3] == [(5, False), (7, True), (12, True)]


def test_real_time_waits_whole_minutes_in_poll_intervals_with_a_line_each(monkeypatch):
    from xcon import clock
    from xcon.actions import verify

    waits, lines = [], []
    monkeypatch.setattr(clock, "wait_minutes", lambda control, minutes: waits.append((control, minutes)))
    monkeypatch.setattr(verify.display, "display", lines.append)
    # real servers: the 20 minutes to the window's end are slept in full, a progress line every 5
    verify.ActionModule._wait("", 0, 20, 5, 60, 20)
    assert waits == [("", 5)] * 4 and len(lines) == 3 and lines[0].startswith("xcon_verify: 5/60 min: no read until 20 min")
    # the lab: one move of its clock, the same minutes
    waits.clear()
    lines.clear()
    verify.ActionModule._wait("/lab/xconlab", 0, 20, 5, 60, 20)
    assert waits == [("/lab/xconlab", 20)] and lines == []
