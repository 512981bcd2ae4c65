"""Facts checked against public sources (issue 11, items 4-10), each proven against the lab.

Each test starts from a stock topology, changes only what the fact is about, and runs the audit
(``fix-xcon.yml --check``) or the fix through ansible-playbook, as an operator would.
"""

from __future__ import annotations

import json
import os

import yaml

from conftest import TOPOLOGIES


def _codes(link):
    return {f["code"]: f for f in link["findings"]}


def topology(tmp_path, base, change):
    """A copy of tests/lab/topologies/<base> with `change(data)` applied; returns its path."""
    with open(os.path.join(TOPOLOGIES, base), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    change(data)
    path = tmp_path / f"topology-{base}"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


def audit(lab, path, minutes=60):
    lab.up(path)
    lab.advance(minutes)
    run = lab.playbook("--check")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    (link,) = lab.report()["links"]
    return link, run


# -- item 10: the Activation-Schedule layout is documented -----------------------------------------
def test_selected_schedule_times_are_decoded_in_gmt(lab, tmp_path):
    # PR_EMS_AB_ACTIVATION_SCHEDULE: 84 bytes, one byte per two hours, high bit first, from Sunday
    # 00:00 GMT. Monday 08:00-10:00 is byte (24 + 8) / 2 = 16 of the week; Wednesday 22:15-22:30 is
    # the second quarter hour (bit 0x40) of byte (72 + 22) / 2 = 47.
    grid = bytearray(84)
    grid[16] = 0xFF
    grid[47] = 0x40

    def change(data):
        connector = data["servers"]["EXIN"]["connectors"][0]
        connector["schedule"] = "selected"
        connector["schedule_grid"] = grid.hex()

    link, _run = audit(lab, topology(tmp_path, "healthy.yml", change))
    finding = _codes(link)["XCON-SCHEDULE-NOT-ALWAYS"]
    assert finding["evidence"]["schedule_times"] == [
        {"day": "Monday", "start": "08:00", "end": "10:00", "text": "Monday 08:00-10:00 GMT"},
        {"day": "Wednesday", "start": "22:15", "end": "22:30", "text": "Wednesday 22:15-22:30 GMT"},
    ]
    assert "Monday 08:00-10:00 GMT" in finding["message"]
