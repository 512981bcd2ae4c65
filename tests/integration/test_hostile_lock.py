"""Issue 22, case 6: the run lock is held by the kernel while any process of a run lives.

`kill -9` of ansible-playbook leaves its workers (ansible-core 2.19 workers call setsid) running: a
second changing run must be refused while one of them is alive, also when the lock's description is
damaged, and get the lock once they are gone.  On the code before the fix the second run "took over
the stale lock" of the dead main process and changed the servers beside the orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from conftest import BIN, ROOT


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _flat(run):
    return " ".join((run.stdout + "\n" + run.stderr).split())


def test_a_second_changing_run_is_refused_while_an_orphan_worker_of_the_first_lives(lab, tmp_path):
    lab.up("kb.yml")
    lab.advance(30)
    lab.ctl("fault", "EXOUT", "slow", "6")  # EXOUT's read keeps its worker busy for tens of seconds
    lock_dir = tmp_path / "state" / "lock"
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, os.path.join(ROOT, "fix-xcon.yml"),
           "-e", f"xcon_report_dir={lab.reports}", "-e", f"xcon_state_dir={tmp_path}/state"]
    first = subprocess.Popen(cmd, cwd=ROOT, env=lab.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    orphans = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (lock_dir / "exclusive.json").exists():
            time.sleep(0.2)
        assert (lock_dir / "exclusive.json").exists(), "the first run never took the lock"
        time.sleep(3)  # the audit play is reading: EXOUT's worker waits on the slow host
        orphans = _children(first.pid)
        assert orphans, "no worker of the first run is running"
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = lab.playbook()
        text = _flat(second)
        assert second.returncode != 0, text[-3000:]
        assert "another fix-xcon run holds the lock" in text and "(a changing run, pid" in text, text[-3000:]
        assert any(_alive(pid) for pid in orphans), "the orphan ended before the second run was refused: the test proves nothing"
        # a damaged description changes nothing: the kernel's lock decides, and the file is named
        (lock_dir / "exclusive.json").write_text("[\"not\", \"a\", \"holder\"]", encoding="utf-8")
        third = lab.playbook()
        text = _flat(third)
        assert third.returncode != 0, text[-3000:]
        assert "another fix-xcon run holds the lock" in text and "exclusive.json holds a JSON list" in text, text[-3000:]
        assert any(_alive(pid) for pid in orphans)
    finally:
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if first.poll() is None:
            first.kill()
            first.wait()
    end = time.monotonic() + 30
    while any(_alive(pid) for pid in orphans) and time.monotonic() < end:
        time.sleep(0.1)
    lab.ctl("fault", "EXOUT", "clear")
    audit = lab.playbook("--check")
    text = _flat(audit)
    assert "holds the lock" not in text, text[-3000:]
    assert "ended without releasing it" in text, text[-3000:]
