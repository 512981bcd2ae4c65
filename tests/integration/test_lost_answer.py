"""A connector write the server applied but whose answer never came back (the connection dropped
at the command's Receive): the change is in the directory, so the MTA restart that activates it must
not be forgotten.  xcon_connector writes the restart marker before it sends the write; a write the
server answered with a refusal removes the marker again (nothing changed)."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from conftest import BIN, ROOT, TOPOLOGIES


def _module(lab, args, *extra):
    cmd = [os.path.join(BIN, "ansible"), "-i", lab.inventory, "EXIN", "-m", "xcon_connector", "-a", json.dumps(args), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=lab.env, capture_output=True, text=True, timeout=300)


def _requests(lab):
    return json.loads(lab.ctl("stats").stdout)["EXIN"]["http_requests"]


def _stack(lab):
    for entry in lab.snapshot()["servers"]["EXIN"]["directory"]:
        if "RFC1006-X400-Link" in entry.get("objectClass", []):
            return entry["attributes"].get("N-Address")
    raise AssertionError("no X.400 connector on EXIN")


def test_a_write_applied_but_unanswered_leaves_its_restart_pending(lab, tmp_path):
    lab.up("kb.yml")
    marker = tmp_path / "state" / "restart-pending" / "EXIN"
    args = {"name": "TO-OUTSIDE", "stack_address": "198.51.100.10", "restart_marker": str(marker)}
    # Calibrate on the wire: a --check call sends the read command only.
    before = _requests(lab)
    check = _module(lab, args, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    per_command = _requests(lab) - before
    assert not marker.exists()
    # The write command: handshake and shell, Command, Send (the server runs the op here), then
    # Receive... : answer every request of the read command and of the write up to its Send.
    receive = per_command + per_command - 3  # Receive, Signal, Delete close each command
    lab.ctl("fault", "EXIN", "drop-after", str(receive))
    broken = _module(lab, args)
    assert broken.returncode != 0, broken.stdout
    assert _stack(lab) == "198.51.100.10", "the lab did not apply the write before the drop: the test lost its point"
    assert marker.exists(), "the change is in the directory, but no MTA restart is pending"


def test_a_write_the_server_refused_leaves_no_restart_pending(lab, tmp_path):
    # an account that may read but not write the connector: the directory refuses the write
    with open(os.path.join(TOPOLOGIES, "kb.yml"), encoding="utf-8") as handle:
        topology = yaml.safe_load(handle)
    topology["servers"]["EXIN"]["winrm"]["rights"] = "read-only"
    path = tmp_path / "kb-read-only.yml"
    path.write_text(yaml.safe_dump(topology), encoding="utf-8")
    lab.up(str(path))
    marker = tmp_path / "state" / "restart-pending" / "EXIN"
    refused = _module(lab, {"name": "TO-OUTSIDE", "stack_address": "198.51.100.10", "restart_marker": str(marker)})
    assert refused.returncode != 0, refused.stdout
    assert "denied" in refused.stdout.lower(), refused.stdout
    assert _stack(lab) != "198.51.100.10"
    assert not marker.exists(), "the server refused the write (nothing changed), yet a restart was left pending"
