"""tests/bench/table.py: README's performance table from the bench's JSON, Ansible's start included,
and JSON written before that figure existed still renders."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import table  # noqa: E402


def _data(**entry):
    audit = {"wall_s": 9.0, "controller_cpu_s": 9.5}
    return {"started": "2026-12-03T07:00:00Z", "command": "bench.py", "repeat": 3, "baseline_repeat": 1,
            "machine": {"nproc": 2, "cpu_model": "CPU", "python": "3.11", "ansible": "core"},
            "sizes": {"100": dict({"exchange_hosts": 200, "audit": audit, "floor_wall_s": 3.0, "audit_over_floor": 3.0},
                                  **entry)}}


def test_the_row_carries_ansibles_start_and_the_bound_it_sets():
    rows = table.render(_data(ansible_start_s=1.3, start_and_floor_over_floor=1.43)).splitlines()
    header, row = rows[2], rows[4]
    cells = [c.strip() for c in row.strip("|").split("|")]
    names = [c.strip() for c in header.strip("|").split("|")]
    assert len(cells) == len(names) == rows[3].count("---")
    assert cells[names.index("Ansible's start s")] == "1.3"
    assert cells[names.index("(start + floor) / floor")] == "1.43x"


def test_json_from_before_the_start_was_measured_still_renders():
    row = table.render(_data()).splitlines()[4]
    assert row.startswith("| 100 | 200 | 9.0 | 3.0 | 3.00x | - | - |")
