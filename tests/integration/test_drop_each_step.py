"""A connection dropped at each WinRM command of a fix, in turn: nothing is left half-made, and a
re-run without the fault converges (mail flows, the queue drains)."""

from __future__ import annotations

import json

import pytest

from conftest import Lab

WORKAROUNDS = {
    # workaround: (server whose connection drops, extra vars)
    "reverse_connector": ("EXIN", {}),
    "firewall_tunnel": ("EXOUT", {}),
}


def _stats(lab, server):
    return json.loads(lab.ctl("stats").stdout)[server]


def _link_connectors(snapshot):
    out = {}
    for name, server in snapshot["servers"].items():
        for entry in server["directory"]:
            if "RFC1006-X400-Link" in entry.get("objectClass", []):
                attrs = entry["attributes"]
                out[(name, entry["dn"])] = (attrs.get("N-Address"), attrs.get("N-Address-Type"), attrs.get("Activation-Style"))
    return out


def _calibrate(tmp_path, workaround, server, extra):
    """Commands and requests per command the real fix sends to `server` on a clean lab."""
    lab = Lab(tmp_path / "calibrate")
    try:
        lab.up("kb.yml")
        lab.advance(30)
        start = _stats(lab, server)
        run = lab.playbook(extra=dict(extra, xcon_workaround=workaround))
        assert run.returncode == 0, run.stdout[-4000:]
        done = _stats(lab, server)
        commands = done["commands"] - start["commands"]
        requests = done["http_requests"] - start["http_requests"]
        return commands, requests // commands, _link_connectors(lab.snapshot())
    finally:
        lab.down()


@pytest.mark.parametrize("workaround", sorted(WORKAROUNDS))
def test_drop_at_every_command_in_turn(tmp_path, workaround):
    server, extra = WORKAROUNDS[workaround]
    commands, per_command, fixed = _calibrate(tmp_path, workaround, server, extra)
    assert commands >= 3
    for index in range(commands):
        lab = Lab(tmp_path / f"drop{index}")
        try:
            lab.up("kb.yml")
            lab.advance(30)
            original = _link_connectors(lab.snapshot())
            base = _stats(lab, server)
            # let the command's first requests through, drop in its middle
            lab.ctl("fault", server, "drop-after", str(base["http_requests"] + index * per_command + per_command // 2))
            lab.playbook(extra=dict(extra, xcon_workaround=workaround))
            lab.ctl("fault", server, "clear")
            half = _link_connectors(lab.snapshot())
            for key, value in half.items():
                allowed = {original.get(key), fixed.get(key)}
                assert value in allowed, f"command {index}: {key} half-made: {value} not in {allowed}"
            assert set(half) <= set(original) | set(fixed), f"command {index}: unexpected connectors {set(half) - set(original) - set(fixed)}"
            again = lab.playbook(extra=dict(extra, xcon_workaround=workaround))
            assert again.returncode == 0, f"command {index}: the re-run did not converge\n" + again.stdout[-4000:]
            lab.advance(30)
            snap = lab.snapshot()
            assert snap["servers"]["EXOUT"]["queues"]["TO-INSIDE"] == 0, f"command {index}: mail still queued"
            assert _link_connectors(snap) == fixed, f"command {index}: the re-run ended elsewhere than a clean fix"
        finally:
            lab.down()
