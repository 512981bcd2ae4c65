"""module_utils/xcon/runlock.py: the run lock is a flock the kernel holds while any process of the
run lives (issue 22, case 6).  Real processes hold it here: a holder, its forked orphan, a dead one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from xcon import runlock

MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "module_utils")

# A stand-in for a run: takes the lock, forks a "worker" that inherits the descriptor (as an
# ansible-core worker does) and calls setsid, then both sleep.  It prints the worker's pid.
HOLDER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from xcon import runlock
taken = runlock.acquire(sys.argv[2], sys.argv[3], sys.argv[4])
worker = os.fork()
if worker == 0:
    os.setsid()
    time.sleep(120)
    os._exit(0)
print(worker, flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    started = []

    def start(run_id="RUN-A", mode=runlock.EXCLUSIVE):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, MODULE_UTILS, str(tmp_path), run_id, mode],
                                stdout=subprocess.PIPE, text=True)
        worker = int(proc.stdout.readline())
        started.append((proc, worker))
        return proc, worker

    yield start
    for proc, worker in started:
        for pid in (proc.pid, worker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()


def _gone(pid, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not end")


def test_a_second_run_is_refused_while_a_live_orphan_worker_of_the_first_holds_the_lock(tmp_path, holder):
    proc, worker = holder()
    with pytest.raises(runlock.LockBusy) as refused:
        runlock.acquire(str(tmp_path), "RUN-B")
    assert "run RUN-A (a changing run" in str(refused.value) and str(tmp_path / "lock" / "run.lock") in str(refused.value)
    os.kill(proc.pid, signal.SIGKILL)  # the main process dies; its setsid worker goes on
    proc.wait()
    with pytest.raises(runlock.LockBusy):
        runlock.acquire(str(tmp_path), "RUN-B")
    with pytest.raises(runlock.LockBusy):  # an audit neither: it would report a half-changed site
        runlock.acquire(str(tmp_path), "AUDIT", mode=runlock.SHARED)
    os.kill(worker, signal.SIGKILL)
    _gone(worker)
    taken = runlock.acquire(str(tmp_path), "RUN-B")
    (note,) = taken["stale"]
    assert "run RUN-A (a changing run" in note and "ended without releasing it" in note
    assert not os.path.exists(tmp_path / "lock" / "exclusive.json") or runlock._description(str(tmp_path / "lock" / "exclusive.json"))[0]["run_id"] == "RUN-B"
    os.close(taken["fd"])


@pytest.mark.parametrize("content", ["[1, 2, 3]", "garbage{", "", '{"run_id": "X", "pid": 1, "host": "elsewhere"}'])
def test_odd_description_content_never_lets_a_second_changing_run_in(tmp_path, holder, content):
    holder()
    (tmp_path / "lock" / "exclusive.json").write_text(content, encoding="utf-8")
    with pytest.raises(runlock.LockBusy) as refused:
        runlock.acquire(str(tmp_path), "RUN-B")
    text = str(refused.value)
    assert str(tmp_path / "lock" / "run.lock") in text
    if content.startswith("["):
        assert str(tmp_path / "lock" / "exclusive.json") in text and "JSON list" in text
    elif content != "" and not content.startswith("{"):
        assert str(tmp_path / "lock" / "exclusive.json") in text and "unreadable" in text


def test_a_dead_run_holds_nothing_whatever_its_description_says(tmp_path):
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    (lock_dir / "exclusive.json").write_text('{"run_id": "CRASHED", "mode": "exclusive", "pid": 1, "host": "x"}', encoding="utf-8")
    taken = runlock.acquire(str(tmp_path), "NEXT")
    assert "run CRASHED" in taken["stale"][0]
    os.close(taken["fd"])
    (lock_dir / "exclusive.json").write_text("[]", encoding="utf-8")
    taken = runlock.acquire(str(tmp_path), "NEXT-2")
    assert "JSON list" in taken["stale"][0]
    os.close(taken["fd"])


def test_audits_share_the_lock_and_keep_changing_runs_out(tmp_path, holder):
    holder("AUDIT-1", runlock.SHARED)
    taken = runlock.acquire(str(tmp_path), "AUDIT-2", mode=runlock.SHARED)
    with pytest.raises(runlock.LockBusy, match="run AUDIT-1 \\(a --check audit"):
        runlock.acquire(str(tmp_path), "RUN")
    os.close(taken["fd"])


def test_a_waiting_run_gets_the_lock_when_the_holder_releases(tmp_path):
    first = runlock.acquire(str(tmp_path), "RUN-A")
    clock = {"t": 0.0}
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        clock["t"] += seconds
        if len(sleeps) == 3:
            assert runlock.release(str(tmp_path), "RUN-A", fd=first["fd"])

    taken = runlock.acquire(str(tmp_path), "RUN-B", wait_seconds=30, sleep=sleep, clock=lambda: clock["t"])
    assert len(sleeps) == 3 and taken["waited"] == 6.0 and taken["stale"] == []
    clock["t"] = 0.0
    with pytest.raises(runlock.LockBusy, match="run RUN-B .*Waited 5 s"):
        runlock.acquire(str(tmp_path), "RUN-C", wait_seconds=5, sleep=sleep, clock=lambda: clock["t"])
    os.close(first["fd"])
    os.close(taken["fd"])


def test_the_descriptor_is_handed_to_the_process_that_opened_the_channel(tmp_path):
    receiving, sending = runlock.open_channel()
    try:
        pid = os.fork()
        if pid == 0:  # a worker: lock, hand over, exit
            taken = runlock.acquire(str(tmp_path), "RUN-A")
            os._exit(0 if runlock.hand_over(taken["fd"]) else 1)
        assert os.waitpid(pid, 0)[1] == 0
        fd = runlock.take_over(receiving)
        assert fd is not None and runlock.held_fd() == fd
        with pytest.raises(runlock.LockBusy):  # the worker is gone; this process holds it now
            runlock.acquire(str(tmp_path), "RUN-B")
        assert runlock.release(str(tmp_path), "RUN-A", fd=fd)
        os.close(runlock.acquire(str(tmp_path), "RUN-B")["fd"])
        os.close(fd)
    finally:
        receiving.close()
        sending.close()
        os.environ.pop(runlock.CHANNEL_ENV, None)
        os.environ.pop(runlock.HELD_ENV, None)


def test_the_report_root_is_the_reports_directory_beside_ansible_cfg_unless_absolute(tmp_path):
    # the facts the lock sets for where the run writes (roles/xcon_run/tasks/lock.yml)
    from xcon.state import report_root

    cfg = str(tmp_path / "site" / "ansible.cfg")
    assert report_root("reports", cfg) == f"{tmp_path}/site/reports"
    assert report_root("out/reports", cfg) == f"{tmp_path}/site/out/reports"
    assert report_root("/srv/xcon/reports", cfg) == "/srv/xcon/reports"
    assert report_root("reports", None) == f"{os.getcwd()}/reports"
