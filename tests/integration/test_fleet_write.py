"""The write path's per-server work from one controller task each (issue 19, README "Performance"):
the back-up of the play's servers (made from the audit's read, no command of its own) and their MTA
restarts (one WinRM command per server with its own connection variables), and a server whose step
failed still stops its own links only."""

from __future__ import annotations

import json
import os
import re
import subprocess

from conftest import XCONLAB, directory_and_firewalls
from xcon import state as xstate


def _links(lab, count):
    topology = str(lab.tmp / f"links-{count}.yml")
    subprocess.run([XCONLAB, "generate", str(count), "-o", topology], check=True, capture_output=True, env=lab.env)
    lab.up(topology, time_scale=0)
    lab.advance(30)


def _commands(lab):
    return {host: stats["commands"] for host, stats in json.loads(lab.ctl("stats").stdout).items()}


def _stacks(lab):
    return {name: sorted(e["attributes"].get("N-Address") for e in server["directory"] if "RFC1006-X400-Link" in e["objectClass"])
            for name, server in lab.snapshot()["servers"].items()}


def test_a_failed_backup_stops_only_the_links_of_its_server(lab):
    _links(lab, 2)
    before = _stacks(lab)
    # The back-up is made from what the audit's read saved (no command of its own): EXIN002's copy
    # cannot be written (a directory holds its name), the other servers' can.
    backup = lab.tmp / "backup"
    (backup / "EXIN002.json").mkdir(parents=True)
    run = lab.playbook(extra={"xcon_backup_dir": str(backup)})
    assert run.returncode != 0, run.stdout[-3000:]
    text = " ".join(run.stdout.split())
    assert re.search(r"EXIN002: backup failed \(XCON-[A-Z-]+\)", text), run.stdout[-3000:]
    report = lab.report()
    links = {link["id"]: link for link in report["links"]}
    stopped = links["EXIN002<->EXOUT002"]["transaction"]
    assert stopped["stopped_at"]["host"] == "EXIN002" and stopped["stopped_at"]["step"] == 0, stopped
    assert "EXIN002<->EXOUT002 stopped before any change (backup) on EXIN002" in text, run.stdout[-3000:]
    fixed = links["EXIN001<->EXOUT001"]
    assert fixed["transaction"]["state"] == "complete" and fixed["verification"]["state"] == "passed", fixed["transaction"]
    after = _stacks(lab)
    # nothing changed on the stopped link's servers; the other link was fixed
    assert after["EXIN002"] == before["EXIN002"] and after["EXOUT002"] == before["EXOUT002"], (before, after)
    assert after["EXIN001"] != before["EXIN001"], after
    # each server's back-up: its own file (rollback reads it), none for the server that failed; each
    # the same as the run's read saved (one command per server: the audit's)
    files = sorted(os.listdir(backup))
    assert {"EXIN001.json", "EXOUT001.json", "EXOUT002.json"} <= set(files) and not (backup / "EXIN002.json").is_file(), files
    saved = xstate.read_verified_json(str(backup / "EXIN001.json"))
    assert saved["inventory_host"] == "EXIN001" and saved["raw"], saved.keys()
    assert saved == xstate.read_verified_json(os.path.join(lab.reports, report["run_id"], "raw", "EXIN001.json"))
    # the firewall's facts the run started from, from the same task, with the checksum rollback verifies
    firewall = xstate.read_verified_json(str(backup / "FW1.firewall.json"))
    assert firewall["name"] == "FW1" and firewall["client_transparency"] is True, firewall


def test_a_backup_that_cannot_save_the_firewall_facts_changes_nothing(lab):
    _links(lab, 2)
    before = lab.snapshot()
    blocker = lab.tmp / "backup-blocked"
    blocker.write_text("not a directory", encoding="utf-8")
    run = lab.playbook(extra={"xcon_backup_dir": str(blocker)})
    assert run.returncode != 0, run.stdout[-3000:]
    text = " ".join(run.stdout.split())
    assert "Nothing was changed: the back-up could not save the firewalls' facts to " + str(blocker) in text, run.stdout[-3000:]
    assert directory_and_firewalls(lab.snapshot()) == directory_and_firewalls(before)


def _recap(run):
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", run.stdout, re.M)}


def _failed_run_dropping(lab, host, commands):
    """A fix of two links in which `host`'s connection drops as its command after `commands`
    commands opens its shell (9 requests per command): the failed run and its flattened output."""
    _links(lab, 2)
    lab.ctl("fault", host, "drop-after", str(commands * 9 + 2))
    run = lab.playbook()
    assert run.returncode != 0, run.stdout[-3000:]
    return run, " ".join(run.stdout.split())


def test_a_failed_restart_fails_its_server_and_neither_stops_nor_hides_the_others(lab):
    # EXIN002's commands: audit, the Stack repoint's read and write, then its MTA restart: the
    # connection drops as the restart's shell opens (9 requests per command)
    run, text = _failed_run_dropping(lab, "EXIN002", 3)
    recap = _recap(run)
    assert recap["EXIN002"]["failed"] == 1, recap
    # a server that ran no task of its own (every change play's task runs once, for its play) is not
    # in the recap: it did not fail either
    assert all(recap.get(h, {}).get("failed", 0) == 0 for h in ("EXIN001", "EXOUT001", "EXOUT002")), recap
    assert re.search(r"fatal: \[EXIN002\] This server's MTA restart failed \(ansible.builtin.fail\): xcon_mta_service \(EXIN002\): ", text), \
        run.stdout[-3000:]
    services = {name: server["service"] for name, server in lab.snapshot()["servers"].items()}
    # every other server was restarted, each once, in the same task
    assert {h: services[h]["restarts"] for h in services} == {"EXIN001": 1, "EXOUT001": 1, "EXIN002": 0, "EXOUT002": 1}, services
    report = lab.report()
    links = {link["id"]: link for link in report["links"]}
    stopped = links["EXIN002<->EXOUT002"]["transaction"]["stopped_at"]
    assert stopped["host"] == "EXIN002" and stopped["step"] == "restart", stopped
    fixed = links["EXIN001<->EXOUT001"]
    assert fixed["transaction"]["state"] == "complete" and fixed["verification"]["state"] == "passed", fixed["transaction"]
    assert set(fixed["mta_restarts"]) == {"EXIN001", "EXOUT001"} and all(r["restarted"] for r in fixed["mta_restarts"].values())
    # the restart that did not happen stays pending for the re-run
    assert links["EXIN002<->EXOUT002"]["mta_restart"] == "pending", links["EXIN002<->EXOUT002"].get("mta_restart")


def test_each_server_keeps_its_own_permission_to_restart(lab):
    _links(lab, 2)

    def forbid(inventory):
        inventory["all"]["children"]["xcon_exchange"]["hosts"]["EXIN002"]["xcon_allow_mta_restart"] = False

    lab.edit_inventory(forbid)
    run = lab.playbook()
    text = " ".join(run.stdout.split())
    services = {name: server["service"]["restarts"] for name, server in lab.snapshot()["servers"].items()}
    # the one restart task restarts the servers that may be restarted, and only those
    assert services == {"EXIN001": 1, "EXOUT001": 1, "EXIN002": 0, "EXOUT002": 1}, services
    assert "EXIN002: MSExchangeMTA needs a restart for the changes to take effect; left pending" in text, run.stdout[-3000:]
    links = {link["id"]: link for link in lab.report()["links"]}
    assert links["EXIN002<->EXOUT002"]["mta_restart"] == "pending", links["EXIN002<->EXOUT002"].get("mta_restart")
    assert links["EXIN001<->EXOUT001"]["verification"]["state"] == "passed"


def test_a_restart_that_would_activate_a_stopped_links_change_is_withheld_and_named(lab):
    # EXOUT002's commands: audit, its Stack repoint's read, then the write: the connection drops as
    # the write's shell opens, so nothing is written there, while EXIN002's repoint is made
    run, text = _failed_run_dropping(lab, "EXOUT002", 2)
    # the service's name comes from the diagnosis's plan (the 5.5 profile's), read by the restart role
    assert ("EXIN002: MSExchangeMTA not restarted: it would activate the changes already made for EXIN002<->EXOUT002"
            in text), run.stdout[-3000:]
    services = {name: server["service"]["restarts"] for name, server in lab.snapshot()["servers"].items()}
    assert services == {"EXIN001": 1, "EXOUT001": 1, "EXIN002": 0, "EXOUT002": 0}, services
    links = {link["id"]: link for link in lab.report()["links"]}
    assert links["EXIN001<->EXOUT001"]["verification"]["state"] == "passed"
    assert links["EXIN002<->EXOUT002"]["transaction"]["stopped_at"]["host"] == "EXOUT002", links["EXIN002<->EXOUT002"]["transaction"]
