"""Rollback and the run lock through the real playbooks against the lab: rollback restores only what
the run wrote and stops (three values) where someone changed it since, unless forced; nothing is
trusted before the run id and the checksums are checked; one changing run at a time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from conftest import BIN, ROOT, directory_and_firewalls


def _flat(run):
    return " ".join((run.stdout + run.stderr).split())  # the YAML callback folds long messages


def _rollback(lab, run_id, *args, **extra):
    return lab.playbook(*args, playbook="playbooks/rollback.yml", extra=dict(extra, xcon_rollback_run_id=run_id))


def _connector(snapshot, server, name):
    return next(e["attributes"] for e in snapshot["servers"][server]["directory"]
                if "RFC1006-X400-Link" in e["objectClass"] and e["attributes"].get("rdn", e["attributes"].get("cn")) == name)


def _edit(lab, host, *module_args):
    """An Exchange admin's later edit, made over WinRM like any other (the lab cannot tell)."""
    cmd = [os.path.join(BIN, "ansible"), "-i", lab.inventory, host, "-m", "xcon_connector", "-a", " ".join(module_args)]
    run = subprocess.run(cmd, cwd=ROOT, env=lab.env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "CHANGED" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]


def test_rollback_after_a_later_edit_stops_for_that_connector_and_force_restores(lab):
    lab.up("kb.yml")
    lab.advance(30)
    start = lab.snapshot()
    fix = lab.playbook(extra={"xcon_workaround": "firewall_tunnel"})
    assert fix.returncode == 0, fix.stdout[-6000:]
    run_id = lab.report()["run_id"]
    written = _connector(lab.snapshot(), "EXOUT", "TO-INSIDE")["N-Address"]
    assert written == "192.0.2.10"  # the run pointed EXOUT at EXIN
    _edit(lab, "EXOUT", "name=TO-INSIDE", "stack_address=203.0.113.77", "address_type=ip")

    preview = _rollback(lab, run_id, "--check")
    assert preview.returncode != 0 and "left 1 connector(s) alone" in _flat(preview), preview.stdout[-6000:]
    assert "restore N-Address of TO-OUTSIDE on EXIN" in _flat(preview)  # what a real rollback would restore
    assert directory_and_firewalls(lab.snapshot())["directory"] != directory_and_firewalls(start)["directory"]

    stopped = _rollback(lab, run_id)
    flat = _flat(stopped)
    assert stopped.returncode != 0, stopped.stdout[-6000:]
    # the three values of the connector changed since: before the run, written by the run, now
    assert "TO-INSIDE on EXOUT was changed since the run wrote it; nothing restored on it" in flat, flat[-6000:]
    assert "N-Address: before the run '198.51.100.1', written by the run '192.0.2.10', now '203.0.113.77'" in flat, flat[-6000:]
    assert "-e xcon_rollback_force=true" in flat
    after = lab.snapshot()
    # that connector is left as the admin set it; the other side and the firewall were restored
    assert _connector(after, "EXOUT", "TO-INSIDE")["N-Address"] == "203.0.113.77"
    assert _connector(after, "EXIN", "TO-OUTSIDE") == _connector(start, "EXIN", "TO-OUTSIDE")
    assert after["firewalls"]["FW1"]["passers"] and not after["firewalls"]["FW1"]["routed_paths"]

    forced = _rollback(lab, run_id, xcon_rollback_force="true")
    assert forced.returncode == 0, forced.stdout[-6000:]
    assert "although it was changed since (forced)" in _flat(forced)
    assert directory_and_firewalls(lab.snapshot())["directory"] == directory_and_firewalls(start)["directory"]
    # each restored server was restarted, and no restart is left pending
    assert not [h for h in ("EXIN", "EXOUT") if os.path.exists(os.path.join(lab.tmp, "state", "restart-pending", h))]
    again = _rollback(lab, run_id)
    assert again.returncode == 0 and "already holds what it held before the run" in _flat(again), again.stdout[-6000:]


def test_rollback_checks_the_run_id_the_checksums_and_refuses_a_check_run(lab):
    lab.up("kb.yml")
    lab.advance(30)
    # a lock left behind by a run that crashed: the next run explains it and takes it over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    os.makedirs(os.path.join(lab.tmp, "state", "lock"))
    with open(os.path.join(lab.tmp, "state", "lock", "exclusive.json"), "w", encoding="utf-8") as handle:
        json.dump({"run_id": "CRASHED-RUN", "mode": "exclusive", "host": os.uname().nodename, "pid": dead.pid, "since": "2026-01-01T00:00:00Z"}, handle)
    audit = lab.playbook("--check")
    assert audit.returncode == 0, audit.stdout[-6000:]
    assert f"the previous holder of the lock, run CRASHED-RUN (a changing run, pid {dead.pid}" in _flat(audit)
    assert "ended without releasing it (interrupted or crashed)" in _flat(audit)
    check_id = lab.report()["run_id"]
    fix = lab.playbook(extra={"xcon_workaround": "reverse_connector"})
    assert fix.returncode == 0, fix.stdout[-6000:]
    run_id = lab.report()["run_id"]
    fixed = directory_and_firewalls(lab.snapshot())

    refused = {
        check_id: f"run {check_id} was a --check audit: it changed nothing and kept no backup, so there is nothing to roll back",
        f"../{os.path.basename(lab.reports)}/{run_id}": "is not a run id (a path, or it contains '..')",
        os.path.join(lab.reports, run_id): "is not a run id",
        "latest": "'latest' holds only a copy of the last report, not a run",
        "20991231T000000Z-000000": "there is no run 20991231T000000Z-000000 under",
    }
    for bad_id, message in refused.items():
        run = _rollback(lab, bad_id)
        assert run.returncode != 0 and message in _flat(run) and "Nothing was changed." in _flat(run), (bad_id, run.stdout[-3000:])
    # a backup or the change journal changed after the run: refused before anything is touched
    for name in ("backup/EXIN.json", "journal/EXIN.json"):
        path = os.path.join(lab.reports, run_id, name)
        original = open(path, encoding="utf-8").read()
        open(path, "w", encoding="utf-8").write(original[: len(original) // 2])  # truncated
        run = _rollback(lab, run_id)
        assert run.returncode != 0, run.stdout[-3000:]
        assert f"{path} does not match its checksum" in _flat(run) and "changed or truncated" in _flat(run), run.stdout[-3000:]
        open(path, "w", encoding="utf-8").write(original)
    assert directory_and_firewalls(lab.snapshot()) == fixed
    # a run that fails (here: a server refuses the credentials) still releases its lock with its report
    lab.ctl("fault", "EXIN", "refuse-credentials")
    failed = lab.playbook()
    assert failed.returncode != 0 and os.path.exists(os.path.join(lab.reports, "latest", "report.json")), failed.stdout[-3000:]
    assert [f for f in os.listdir(os.path.join(lab.tmp, "state", "lock")) if f.endswith(".json")] == []


def _lock_file(lab):
    return os.path.join(lab.tmp, "state", "lock", "exclusive.json")


def test_one_run_at_a_time_the_second_refuses_or_waits_and_sees_the_first_runs_change(lab):
    lab.up("kb.yml")
    lab.advance(30)
    cmd = lambda *extra: [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, os.path.join(ROOT, "fix-xcon.yml"),  # noqa: E731
                          "-e", f"xcon_report_dir={lab.reports}", "-e", f"xcon_state_dir={lab.tmp}/state", *extra]
    first = subprocess.Popen(cmd("-e", "xcon_workaround=auto"), cwd=ROOT, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not os.path.exists(_lock_file(lab)) and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    with open(_lock_file(lab), encoding="utf-8") as handle:
        holder = json.load(handle)
    assert holder["pid"] == first.pid  # the lock names the ansible-playbook process of the run
    # a second run asking for the other workaround, at once: refused, naming the holder
    refused = lab.playbook(extra={"xcon_workaround": "reverse_connector"})
    assert refused.returncode != 0
    assert f"run {holder['run_id']} (a changing run, pid {first.pid} on {os.uname().nodename}" in _flat(refused), refused.stdout[-3000:]
    # a third one that waits: it audits only once it has the lock, so it sees the first run's fix
    waiting = subprocess.Popen(cmd("-e", "xcon_workaround=reverse_connector", "-e", "xcon_lock_wait_seconds=600"),
                               cwd=ROOT, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_out, _ = first.communicate(timeout=900)
    waiting_out, _ = waiting.communicate(timeout=900)
    assert first.returncode == 0, first_out[-6000:]
    assert waiting.returncode == 0, waiting_out[-6000:]
    recap = waiting_out.split("PLAY RECAP")[-1]
    assert re.findall(r"changed=(\d+)", recap) and not [n for n in re.findall(r"changed=(\d+)", recap) if n != "0"], waiting_out[-3000:]
    snapshot = lab.snapshot()
    names = {e["attributes"].get("rdn", e["attributes"].get("cn")) for e in snapshot["servers"]["EXIN"]["directory"]
             if "RFC1006-X400-Link" in e["objectClass"]}
    assert "TO-OUTSIDE-REVERSE" not in names  # no second workaround on top of the first
    assert not os.path.exists(_lock_file(lab))  # released at the end
