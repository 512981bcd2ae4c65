"""module_utils/xcon/state.py: the one owner of the toolkit's files (atomic writes, checksums,
restart markers, verified-change times, the change journal, the run lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xcon import state


def test_write_with_checksum_verifies_and_tampering_is_named(tmp_path):
    path = str(tmp_path / "backup" / "EXIN.json")
    state.write_json_atomic(path, {"raw": [{"dn": "cn=A", "attributes": {"N-Address": "192.0.2.1"}}]}, mode=0o600, checksum=True)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with open(path + ".sha256", encoding="utf-8") as handle:
        assert handle.read().endswith("  EXIN.json\n")  # sha256sum -c format
    assert state.read_verified_json(path)["raw"][0]["dn"] == "cn=A"
    # an edit that keeps valid JSON
    text = open(path, encoding="utf-8").read().replace("192.0.2.1", "192.0.2.9")
    open(path, "w", encoding="utf-8").write(text)
    with pytest.raises(state.StateError, match="does not match its checksum"):
        state.read_verified_json(path)
    # truncation
    open(path, "w", encoding="utf-8").write(text[:20])
    with pytest.raises(state.StateError, match="changed or truncated"):
        state.verify_checksum(path)
    os.unlink(path + ".sha256")
    with pytest.raises(state.StateError, match="has no checksum"):
        state.verify_checksum(path)


def test_sidecar_is_what_sha256sum_checks(tmp_path):
    path = str(tmp_path / "plan.json")
    state.write_json_atomic(path, {"plan": []}, checksum=True)
    check = subprocess.run(["sha256sum", "-c", "plan.json.sha256"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_restart_marker_survives_until_cleared(tmp_path):
    marker = state.restart_marker(str(tmp_path), "EXIN")
    assert not state.restart_pending(marker)
    state.note_restart(marker, "dir_modify TO-OUTSIDE")
    state.note_restart(marker, "dir_create TO-OUTSIDE-REVERSE")
    assert state.restart_pending(marker)
    assert open(marker, encoding="utf-8").read().splitlines() == ["dir_modify TO-OUTSIDE", "dir_create TO-OUTSIDE-REVERSE"]
    state.clear_restart(marker)
    state.clear_restart(marker)  # twice: no error
    assert not state.restart_pending(marker)


def test_baseline_per_server_upper_case(tmp_path):
    path = str(tmp_path / state.BASELINE_FILE)
    assert state.evidence_baseline(path, "exin") is None
    state.record_baseline(path, {"exin": "2026-01-01T00:10:00Z"})
    state.record_baseline(path, {"EXOUT": "2026-01-01T00:11:00Z"})
    assert state.evidence_baseline(path, "EXIN") == "2026-01-01T00:10:00Z"
    assert state.evidence_baseline(path, "exout") == "2026-01-01T00:11:00Z"


def test_journal_appends_and_is_checksummed(tmp_path):
    path = state.journal_path(str(tmp_path), "EXIN")
    state.journal_append(path, {"n": 1})
    state.journal_append(path, {"n": 2})
    assert state.read_verified_json(path) == [{"n": 1}, {"n": 2}]


def test_default_state_dir_is_beside_ansible_cfg(tmp_path):
    assert state.default_state_dir(str(tmp_path / "ansible.cfg")) == str(tmp_path / "reports" / "state")


# -- the run lock -----------------------------------------------------------------------------------
@pytest.fixture
def other_process():
    """A live process of this host that stands for another ansible-playbook run."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_changing_run_is_refused_with_the_holders_id_host_and_pid(tmp_path, other_process):
    state.acquire_lock(str(tmp_path), "RUN-A", pid=other_process)
    with pytest.raises(state.LockBusy) as refused:
        state.acquire_lock(str(tmp_path), "RUN-B", pid=os.getpid())
    text = str(refused.value)
    assert "run RUN-A" in text and f"pid {other_process} on {os.uname().nodename}" in text
    # a shared (audit) taker is refused too: it would report a half-changed site
    with pytest.raises(state.LockBusy):
        state.acquire_lock(str(tmp_path), "AUDIT", mode=state.SHARED, pid=os.getpid())
    assert state.release_lock(str(tmp_path), "RUN-A", pid=other_process)
    state.acquire_lock(str(tmp_path), "RUN-B", pid=os.getpid())


def test_audits_share_the_lock_and_keep_changing_runs_out(tmp_path, other_process):
    state.acquire_lock(str(tmp_path), "AUDIT-1", mode=state.SHARED, pid=other_process)
    state.acquire_lock(str(tmp_path), "AUDIT-2", mode=state.SHARED, pid=os.getpid())
    with pytest.raises(state.LockBusy, match="run AUDIT-1 \\(a --check audit"):
        state.acquire_lock(str(tmp_path), "RUN", pid=os.getpid())


def test_a_waiting_run_gets_the_lock_when_the_holder_releases(tmp_path, other_process):
    state.acquire_lock(str(tmp_path), "RUN-A", pid=other_process)
    clock = {"t": 0.0}
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        clock["t"] += seconds
        if len(sleeps) == 3:
            state.release_lock(str(tmp_path), "RUN-A")

    taken = state.acquire_lock(str(tmp_path), "RUN-B", wait_seconds=30, pid=os.getpid(), sleep=sleep, clock=lambda: clock["t"])
    assert len(sleeps) == 3 and taken["waited"] == 6.0 and taken["mode"] == state.EXCLUSIVE
    # a bounded wait: the next one gives up after its time, naming the holder and the wait
    clock["t"] = 0.0
    with pytest.raises(state.LockBusy, match="run RUN-B .*Waited 5 s"):
        state.acquire_lock(str(tmp_path), "RUN-C", wait_seconds=5, pid=other_process, sleep=sleep, clock=lambda: clock["t"])


def test_stale_lock_of_a_dead_process_is_explained_and_taken_over(tmp_path):
    dead = _dead_pid()
    state.acquire_lock(str(tmp_path), "CRASHED", pid=dead)
    taken = state.acquire_lock(str(tmp_path), "NEXT", pid=os.getpid())
    (reason,) = taken["stale"]
    assert f"run CRASHED (a changing run, pid {dead}" in reason and f"process {dead} is no longer running" in reason
    with open(taken["lock_file"], encoding="utf-8") as handle:
        assert json.load(handle)["run_id"] == "NEXT"


def test_stale_after_reboot_and_reused_pid(tmp_path, other_process):
    lock_dir = tmp_path / state.LOCK_DIR
    holder = state.identity("BEFORE-REBOOT", state.EXCLUSIVE, pid=other_process)
    holder["boot_id"] = "00000000-0000-0000-0000-000000000000"
    state.write_json_atomic(str(lock_dir / "exclusive.json"), holder)
    if state._boot_id():  # pylint: disable=protected-access
        assert "has restarted since the lock was taken" in state.stale_reason(holder)
    holder = state.identity("REUSED", state.EXCLUSIVE, pid=other_process)
    if holder["pid_start"]:
        holder["pid_start"] = str(int(holder["pid_start"]) + 1)
        assert "pid now belongs to another process" in state.stale_reason(holder)


def test_lock_from_another_controller_is_respected(tmp_path):
    holder = state.identity("ELSEWHERE", state.EXCLUSIVE, pid=_dead_pid())
    holder["host"] = "another-controller.example"
    state.write_json_atomic(str(tmp_path / state.LOCK_DIR / "exclusive.json"), holder)
    with pytest.raises(state.LockBusy, match="another-controller.example.*remove .*exclusive.json"):
        state.acquire_lock(str(tmp_path), "HERE", pid=os.getpid())
