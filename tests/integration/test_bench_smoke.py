"""Smoke test of the benchmark (tests/bench/bench.py, `make bench`): N=2, one run, JSON shape,
and one WinRM command per Exchange host in the audit phase."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from conftest import ROOT


def test_bench_smoke(tmp_path):
    output = tmp_path / "latest.json"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "bench", "bench.py"), "--sizes", "2", "--repeat", "1",
                           "--skip-fix", "--skip-baseline", "--output", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.monotonic() - start < 60
    data = json.loads(output.read_text(encoding="utf-8"))
    assert {"version", "command", "machine", "sizes", "repeat", "baseline_repeat"} <= set(data)
    assert {"nproc", "cpu_model", "python", "ansible"} <= set(data["machine"])
    entry = data["sizes"]["2"]
    for key in ("audit_wall_s", "audit_per_link_s", "fix_wall_s", "baseline_wall_s", "ratio",
                "winrm_commands_per_host", "winrm_http_requests_per_host"):
        assert key in entry
    assert entry["fix_wall_s"] is None and entry["baseline_wall_s"] is None and entry["ratio"] is None
    assert entry["audit_wall_s"] > 0
    for run in (entry["audit"], entry["audit_phase"]):
        assert run["hosts"] == 4
        assert {"wall_s", "controller_cpu_s", "lab_cpu_s", "lab_share", "commands_per_host", "http_requests_per_host"} <= set(run)
    # The audit phase (playbooks/audit.yml): exactly one WinRM command on every Exchange host.
    assert entry["audit_phase"]["commands_per_host"]["histogram"] == {"1": 4}
    assert entry["winrm_commands_per_host"]["audit_phase"] == 1
    # The whole --check run too: the plan says what would change, the servers are not read again.
    assert entry["audit"]["commands_per_host"]["histogram"] == {"1": 4}
