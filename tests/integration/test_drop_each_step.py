"""Fault-injection matrix: for each workaround, the connection to each Exchange server in turn drops
in the middle of each WinRM command the fix sends it (the lab's ``fault SERVER drop-after N``:
from that request on, the server answers nothing for the rest of the run).  For every case:

* the run's final report is written (also when the run fails) and says where the link stopped;
* no link is worse than before the run: each connector is either as it was or as a clean fix
  leaves it, and after more emulated time every flow has delivered at least as much as in a
  control lab the toolkit never touched, and a flow that delivered in the control still delivers;
* a re-run after clearing the fault converges (exit 0, mail flows, verification passed).

Each workaround and server has one lab for all its cases (``down``/``up`` between cases); they
run side by side (the runs mostly wait on WinRM and the lab's clock).  A re-run from a state
(directory, firewall, the toolkit's state files) that an earlier case already re-ran from is the
same deterministic run, so it runs once per distinct state.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Lab

WORKAROUNDS = {
    "firewall_tunnel": {},
    "reverse_connector": {},
    "transparency_off": {"xcon_transparency_off_acknowledged": "true"},
}
SERVERS = ("EXIN", "EXOUT")
BEFORE_MINUTES = 30   # faulty traffic before the run (the audit's evidence)
WINDOW_MINUTES = 20   # emulated time after the broken run before mail is counted
CONTROL_MINUTES = 240  # the control lab's horizon (covers the longest broken run's verification)


def _link_connectors(snapshot):
    out = {}
    for name, server in snapshot["servers"].items():
        for entry in server["directory"]:
            if "RFC1006-X400-Link" in entry.get("objectClass", []):
                attrs = entry["attributes"]
                out[(name, entry["dn"])] = (attrs.get("N-Address"), attrs.get("N-Address-Type"), attrs.get("Activation-Style"))
    return out


def _minute(snapshot, start):
    from datetime import datetime

    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return int((parse(snapshot["time"]) - parse(start)).total_seconds() // 60)


def _delivered(flow, until=None, since=None):
    return sum(h["delivered"] for h in flow["history"]
               if (until is None or h["minute"] <= until) and (since is None or h["minute"] > since))


def _fresh(lab):
    lab.down()
    shutil.rmtree(lab.tmp / "state", ignore_errors=True)
    lab.up("kb.yml")


def _state_key(lab, snapshot):
    """What a re-run starts from: the directory, the firewall and the toolkit's own state files."""
    files = {}
    state = lab.tmp / "state"
    for root, _, names in os.walk(state):
        for name in names:
            path = os.path.join(root, name)
            if name.endswith(".json") and "firewall" in root:
                with open(path, encoding="utf-8") as handle:
                    files[os.path.relpath(path, state)] = json.load(handle).get("firewall")
            elif "restart-pending" in root:
                files[os.path.relpath(path, state)] = True
    fw = {k: v for k, v in snapshot["firewalls"]["FW1"].items() if k in ("passers", "routed_paths", "client_transparency")}
    return json.dumps([sorted(map(str, _link_connectors(snapshot).items())), fw, files], sort_keys=True, default=str)


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    """Mail flow in a lab the toolkit never touches, minute by minute."""
    lab = Lab(tmp_path_factory.mktemp("control"))
    try:
        lab.up("kb.yml")
        start = lab.snapshot()["time"]
        lab.advance(BEFORE_MINUTES + CONTROL_MINUTES)
        snap = lab.snapshot()
        return start, {(f["from"], f["to"]): f for f in snap["flows"]}
    finally:
        lab.down()


def _matrix(workaround, tmp_path, control):
    """Every case of one workaround; returns a one-line account (raises AssertionError on a failure)."""
    started = time.monotonic()
    extra = dict(WORKAROUNDS[workaround], xcon_workaround=workaround)
    start, control_flows = control
    tmp_path.mkdir(parents=True, exist_ok=True)
    lab = Lab(tmp_path)
    try:
        # Calibrate: the commands a clean fix sends each server, and the connectors it leaves.
        _fresh(lab)
        lab.advance(BEFORE_MINUTES)
        original = _link_connectors(lab.snapshot())
        base = json.loads(lab.ctl("stats").stdout)
        clean = lab.playbook(extra=extra)
        assert clean.returncode == 0, clean.stdout[-4000:]
        fixed = _link_connectors(lab.snapshot())
        done = json.loads(lab.ctl("stats").stdout)
        calibration = {}
        for server in SERVERS:
            commands = done[server]["commands"] - base[server]["commands"]
            requests = done[server]["http_requests"] - base[server]["http_requests"]
            assert commands >= 1 and requests % commands == 0, (workaround, server, commands, requests)
            calibration[server] = (commands, requests // commands)
    finally:
        lab.down()

    def server_cases(server):
        # each server's cases in a lab of their own, side by side with the other server's
        commands, per_command = calibration[server]
        own = Lab(tmp_path / server)
        (tmp_path / server).mkdir(exist_ok=True)
        converged = set()
        try:
            for index in range(commands):
                _case(own, f"{workaround}, {server}, command {index + 1}/{commands}", server,
                      index * per_command + per_command // 2, extra, start, control_flows, original, fixed, converged)
        finally:
            own.down()
        return commands, len(converged)

    with ThreadPoolExecutor(max_workers=len(SERVERS)) as pool:
        results = [f.result() for f in [pool.submit(server_cases, server) for server in SERVERS]]
    cases, reruns = sum(r[0] for r in results), sum(r[1] for r in results)
    return (f"{workaround}: {cases} cases (commands, requests per command: {calibration}), "
            f"{reruns} distinct re-runs, {time.monotonic() - started:.0f} s")


def _case(lab, case, server, drop_after, extra, start, control_flows, original, fixed, converged):
    _fresh(lab)
    lab.advance(BEFORE_MINUTES)
    latest = os.path.join(lab.reports, "latest", "report.json")
    previous_run = lab.report()["run_id"] if os.path.exists(latest) else None
    # let the command's first requests through, drop in its middle, then for the rest of the run
    lab.ctl("fault", server, "drop-after", str(drop_after))
    restarts = {name: srv["service"]["restarts"] for name, srv in lab.snapshot()["servers"].items()}
    broken = lab.playbook(extra=extra)

    # An applied connector change is never forgotten: its server's MTA was restarted by this run,
    # or a restart is pending for the re-run (also when the write's answer was lost on the way).
    after = lab.snapshot()
    for name in SERVERS:
        if any(key[0] == name and value != original.get(key) for key, value in _link_connectors(after).items()):
            restarted = after["servers"][name]["service"]["restarts"] > restarts[name]
            pending = (lab.tmp / "state" / "restart-pending" / name).exists()
            assert restarted or pending, f"{case}: {name} holds a change, but no restart ran and none is pending"

    # The final report is written, for this run, and says where the link stopped.
    report = lab.report()
    assert report["run_id"] != previous_run and not report["check_mode"], f"{case}: no report of this run\n{broken.stdout[-3000:]}"
    # (the audit writes a report of the run too; only the final one carries each link's transaction)
    assert all("transaction" in l for l in report["links"] if l.get("changes")), f"{case}: no final report\n{broken.stdout[-3000:]}"
    if broken.returncode != 0:
        said = [h["host"] for h in report["coverage"]["hosts_failed"]]
        for link in report["links"]:
            stopped = (link.get("transaction") or {}).get("stopped_at")
            if stopped:
                assert stopped["host"] == server and stopped["reason"], f"{case}: {stopped}"
                assert report.get("rerun_command", "").startswith("ansible-playbook "), f"{case}: no re-run command"
                said.append(stopped["host"])
            elif link["verification"]["state"] != "passed" and link.get("changes"):
                details = json.dumps(link["verification"]["details"])
                assert server in details, f"{case}: verification {link['verification']} does not name {server}"
                said.append(server)
        assert server in said, f"{case}: the run failed but the report does not say where\n{broken.stdout[-3000:]}"
    else:
        assert all(l["verification"]["state"] == "passed" for l in report["links"] if l.get("changes")), case

    # No link worse than before: after more time (the fault stays: it only affects WinRM), every
    # connector is as it was or as a clean fix leaves it, never half-made ...
    lab.advance(WINDOW_MINUTES)
    snap = lab.snapshot()
    for key, value in _link_connectors(snap).items():
        assert value in {original.get(key), fixed.get(key)}, f"{case}: {key} half-made: {value}"
    # ... and every flow has delivered at least as much as in the untouched control, and still flows.
    minute = _minute(snap, start)
    assert minute <= BEFORE_MINUTES + CONTROL_MINUTES, f"{case}: the control does not reach minute {minute}"
    for flow in snap["flows"]:
        reference = control_flows[(flow["from"], flow["to"])]
        assert flow["delivered"] >= _delivered(reference, until=minute), (
            f"{case}: {flow['from']}->{flow['to']} delivered {flow['delivered']} by minute {minute}, "
            f"the untouched lab {_delivered(reference, until=minute)}")
        if _delivered(reference, until=minute, since=minute - WINDOW_MINUTES):
            assert _delivered(flow, since=minute - WINDOW_MINUTES), f"{case}: {flow['from']}->{flow['to']} stopped flowing"

    # A re-run without the fault converges (once per distinct starting state).
    key = _state_key(lab, snap)
    if key in converged:
        return
    lab.ctl("fault", server, "clear")
    again = lab.playbook(extra=extra)
    assert again.returncode == 0, f"{case}: the re-run did not converge\n" + again.stdout[-4000:]
    for link in lab.report()["links"]:
        assert link["verification"]["state"] == "passed" or (link["status"] == "ok" and not link["changes"]), (case, link["verification"])
    assert _link_connectors(lab.snapshot()) == fixed, f"{case}: the re-run ended elsewhere than a clean fix"
    converged.add(key)


def test_drop_at_every_command_on_each_server(tmp_path, control):
    """The three workarounds' matrices run side by side, each in its own lab (the runs mostly wait
    on WinRM and the lab clock, so this takes about as long as the longest one)."""
    chosen = [w for w in os.environ.get("XCON_MATRIX_WORKAROUNDS", ",".join(WORKAROUNDS)).split(",") if w]
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        futures = {w: pool.submit(_matrix, w, tmp_path / w, control) for w in chosen}
    failures, accounts = [], []
    for workaround, future in futures.items():
        try:
            accounts.append(future.result())
        except AssertionError as exc:
            failures.append(f"{workaround}: {exc}")
    print("\n" + "\n".join(accounts))
    assert not failures, "\n\n".join(failures)
