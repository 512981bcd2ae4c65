"""The audit reads the play's servers from one controller task (issue 19, README "Performance"):
still one WinRM command per server, --limit still decides which servers are read, and a server that
cannot be read is `unknown` in the report and failed in the recap."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import XCONLAB


def _three_links(lab):
    topology = str(lab.tmp / "three.yml")
    subprocess.run([XCONLAB, "generate", "3", "-o", topology], check=True, capture_output=True, env=lab.env)
    lab.up(topology)
    lab.advance(60)


def _commands(lab):
    return {host: stats["commands"] for host, stats in json.loads(lab.ctl("stats").stdout).items()}


def test_limit_decides_which_servers_the_fleet_read_reads(lab):
    _three_links(lab)
    run = lab.playbook("--check", "--limit", "localhost,FW1,EXIN001,EXOUT001,EXIN002,EXOUT002")
    commands = _commands(lab)
    # every server of the play: exactly one command; the server left out by --limit: none
    assert {h: c for h, c in commands.items() if h.endswith(("001", "002"))} == {
        "EXIN001": 1, "EXOUT001": 1, "EXIN002": 1, "EXOUT002": 1}, commands
    assert commands.get("EXIN003", 0) == 0 and commands.get("EXOUT003", 0) == 0, commands
    report = lab.report()
    status = {link["id"]: link["status"] for link in report["links"]}
    assert status["EXIN001<->EXOUT001"] == "error" and status["EXIN002<->EXOUT002"] == "error", status
    assert {h["host"] for h in report["coverage"]["hosts_failed"]} >= {"EXIN003", "EXOUT003"}
    assert run.returncode != 0  # the servers not read make the audit's coverage a failure


def test_an_unreadable_server_is_unknown_and_fails_in_the_recap(lab):
    _three_links(lab)
    lab.ctl("fault", "EXOUT002", "refuse-credentials")
    run = lab.playbook("--check")
    assert run.returncode != 0
    report = lab.report()
    status = {link["id"]: link["status"] for link in report["links"]}
    assert status.get("EXIN001<->EXOUT001") == "error" and status.get("EXIN003<->EXOUT003") == "error", status
    assert [h["host"] for h in report["coverage"]["hosts_failed"]] == ["EXOUT002"]
    recap = re.search(r"^EXOUT002\s+:.*failed=(\d+)", run.stdout, re.M)
    assert recap and int(recap.group(1)) == 1, run.stdout[-3000:]
    # named once on the console, with its code, from the read's own list of the hosts it could not read
    named = re.findall(r"^\s*(\S+) could not be read \((XCON-[A-Z-]+)\): ", run.stdout, re.M)
    assert named == [("EXOUT002", "XCON-ACCESS-DENIED")], run.stdout[-3000:]
