"""xcon.fleet_fork: a read-only fleet task's shares in forked processes (real forks, real pipes)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from xcon import fleet_fork
from xcon.errors import XconUnreachable


def _pids(share):
    """work(): each key answers the pid of the process that ran it."""
    return {key: (True, (key, os.getpid())) for key in share}


def _no_child_left():
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_shares_are_contiguous_even_and_cover_every_key():
    keys = [f"h{i}" for i in range(10)]
    parts = fleet_fork.shares(keys, 3)
    assert parts == [keys[0:4], keys[4:7], keys[7:10]]
    assert fleet_fork.shares(keys[:2], 3) == [["h0"], ["h1"]]
    assert fleet_fork.shares([], 2) == [[]]


def test_processes_follow_the_cores_the_share_size_and_the_setting(monkeypatch):
    monkeypatch.delenv(fleet_fork.ENV, raising=False)
    assert fleet_fork.processes_for(200, cores=2) == 2
    assert fleet_fork.processes_for(20, cores=2) == 1  # 10 per process: not worth a fork
    assert fleet_fork.processes_for(40, cores=8) == 2
    monkeypatch.setenv(fleet_fork.ENV, "3")
    assert fleet_fork.processes_for(2, cores=1) == 2  # never more processes than jobs
    monkeypatch.setenv(fleet_fork.ENV, "1")
    assert fleet_fork.processes_for(400, cores=8) == 1
    monkeypatch.setenv(fleet_fork.ENV, "two")
    with pytest.raises(ValueError, match="XCON_FLEET_PROCESSES must be a whole number"):
        fleet_fork.processes_for(10)
    assert fleet_fork.threads_each(40, 2, 100) == 20
    assert fleet_fork.threads_each(40, 3, 5) == 5
    assert fleet_fork.threads_each(1, 4, 5) == 1


def test_first_shares_run_in_children_the_last_in_this_process():
    keys = [f"h{i}" for i in range(9)]
    outcomes = fleet_fork.run_shares(keys, _pids, 3)
    assert set(outcomes) == set(keys)
    pids = {key: value[1] for key, (ok, value) in outcomes.items()}
    assert {pids[k] for k in keys[6:]} == {os.getpid()}
    children = {pids[k] for k in keys[:6]}
    assert os.getpid() not in children and len(children) == 2
    assert all(ok and value[0] == key for key, (ok, value) in outcomes.items())
    _no_child_left()


def test_a_failure_in_a_child_comes_back_as_that_jobs_exception():
    class Unpicklable(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}/{b}")

    def work(share):
        out = {}
        for key in share:
            if key == "down":
                out[key] = (False, XconUnreachable("down:5985: connection refused"))
            elif key == "odd":
                out[key] = (False, Unpicklable("x", "y"))
            else:
                out[key] = (True, key.upper())
        return out

    outcomes = fleet_fork.run_shares(["down", "odd", "ok", "last"], work, 2)
    ok, exc = outcomes["down"]
    assert not ok and type(exc) is XconUnreachable and str(exc) == "down:5985: connection refused"
    ok, exc = outcomes["odd"]
    assert not ok and isinstance(exc, RuntimeError) and str(exc) == "Unpicklable: x/y"
    assert outcomes["ok"] == (True, "OK") and outcomes["last"] == (True, "LAST")
    _no_child_left()


def test_a_child_that_dies_loses_only_its_share_as_failed_reads():
    parent = os.getpid()

    def work(share):
        if os.getpid() != parent and "victim" in share:
            os.kill(os.getpid(), signal.SIGKILL)
        return _pids(share)

    outcomes = fleet_fork.run_shares(["victim", "other", "mine"], work, 3)
    ok, exc = outcomes["victim"]
    assert not ok and isinstance(exc, fleet_fork.ReaderLost)
    assert "signal SIGKILL" in str(exc) and "nothing was changed" in str(exc)
    assert outcomes["other"][0] and outcomes["mine"] == (True, ("mine", parent))
    _no_child_left()


def test_a_child_that_exits_without_answering_is_named_by_its_status():
    parent = os.getpid()

    def work(share):
        if os.getpid() != parent:
            os._exit(3)  # pylint: disable=protected-access
        return _pids(share)

    outcomes = fleet_fork.run_shares(["a", "b"], work, 2)
    assert "exit status 3" in str(outcomes["a"][1]) and outcomes["b"][0]
    _no_child_left()


def test_what_work_raises_in_a_child_is_raised_here_after_every_child_ended():
    parent = os.getpid()

    def work(share):
        if os.getpid() != parent:
            raise ValueError("host h0: xcon_exchange_version must be one of 4.0, 5.0, 5.5")
        return _pids(share)

    with pytest.raises(ValueError, match="xcon_exchange_version"):
        fleet_fork.run_shares(["h0", "h1", "h2"], work, 3)
    _no_child_left()


def test_an_exception_here_stops_and_reaps_the_children():
    parent = os.getpid()
    started = []

    def work(share):
        if os.getpid() != parent:
            threading.Event().wait(30)  # would outlive the test if not stopped
            return _pids(share)
        started.append(True)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fleet_fork.run_shares(["a", "b"], work, 2)
    assert started
    _no_child_left()


def test_deferred_jobs_and_large_answers_come_back():
    parent = os.getpid()
    big = "x" * (1 << 20)  # more than a pipe holds: the child writes while this process reads

    def work(share):
        return {key: fleet_fork.DEFER if key == "kerberos" and os.getpid() != parent else (True, big) for key in share}

    outcomes = fleet_fork.run_shares(["kerberos", "a", "b", "c"], work, 2)
    assert outcomes["kerberos"] == fleet_fork.DEFER
    assert all(outcomes[k] == (True, big) for k in "abc")
    _no_child_left()


def test_no_fork_while_other_threads_run():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        outcomes = fleet_fork.run_shares(["a", "b", "c"], _pids, 3)
    finally:
        stop.set()
        thread.join()
    assert {value[1] for ok, value in outcomes.values()} == {os.getpid()}


def test_thread_outcomes_keep_each_jobs_value_or_exception():
    def job(value):
        if value < 0:
            raise XconUnreachable(f"{value}")
        return value * 2

    outcomes = fleet_fork.thread_outcomes([("a", job, (1,)), ("b", job, (-1,))], 4)
    assert outcomes["a"] == (True, 2)
    assert not outcomes["b"][0] and isinstance(outcomes["b"][1], XconUnreachable)
    assert fleet_fork.thread_outcomes([], 4) == {}


def test_run_fleet_runs_the_deferred_jobs_here_with_every_thread(monkeypatch):
    monkeypatch.setenv(fleet_fork.ENV, "2")
    calls = []

    def work(share, threads, child):
        calls.append((list(share), threads, child, os.getpid()))
        return {key: fleet_fork.DEFER if child and key.startswith("krb") else (True, (child, os.getpid())) for key in share}

    outcomes = fleet_fork.run_fleet(["krb1", "a", "b", "c"], work, 40)
    assert outcomes["a"][1][0] is True and outcomes["a"][1][1] != os.getpid()  # read in the child
    assert outcomes["krb1"] == (True, (False, os.getpid()))  # deferred: read here
    assert outcomes["c"] == (True, (False, os.getpid()))
    here = [c for c in calls if c[3] == os.getpid()]
    assert [c[:3] for c in here] == [(["b", "c"], 2, False), (["krb1"], 40, False)]  # 2: at most the share
    _no_child_left()


def test_a_host_named_like_the_answer_kinds_is_just_a_host():
    outcomes = fleet_fork.run_shares(["raised", "lost", "outcomes"], _pids, 3)
    assert {key: value[0] for key, (ok, value) in outcomes.items() if ok} == {"raised": "raised", "lost": "lost", "outcomes": "outcomes"}
    _no_child_left()
