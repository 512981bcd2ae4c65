"""module_utils/xcon/state.py: the one owner of the toolkit's files (atomic writes, checksums,
restart markers, verified-change times, the change journal)."""

from __future__ import annotations

import os
import subprocess

import pytest

from xcon import state


def test_write_with_checksum_verifies_and_tampering_is_named(tmp_path):
    path = str(tmp_path / "backup" / "EXIN.json")
    state.write_json_atomic(path, {"raw": [{"dn": "cn=A", "attributes": {"N-Address": "192.0.2.1"}}]}, mode=0o600, checksum=True)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with open(path + ".sha256", encoding="utf-8") as handle:
        assert handle.read().endswith("  EXIN.json\n")  # sha256sum -c format
    assert state.read_verified_json(path)["raw"][0]["dn"] == "cn=A"
    # an edit that keeps valid JSON
    text = open(path, encoding="utf-8").read().replace("192.0.2.1", "192.0.2.9")
    open(path, "w", encoding="utf-8").write(text)
    with pytest.raises(state.StateError, match="does not match its checksum"):
        state.read_verified_json(path)
    # truncation
    open(path, "w", encoding="utf-8").write(text[:20])
    with pytest.raises(state.StateError, match="changed or truncated"):
        state.verify_checksum(path)
    os.unlink(path + ".sha256")
    with pytest.raises(state.StateError, match="has no checksum"):
        state.verify_checksum(path)


def test_sidecar_is_what_sha256sum_checks(tmp_path):
    path = str(tmp_path / "plan.json")
    state.write_json_atomic(path, {"plan": []}, checksum=True)
    check = subprocess.run(["sha256sum", "-c", "plan.json.sha256"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_restart_marker_survives_until_cleared(tmp_path):
    marker = state.restart_marker(str(tmp_path), "EXIN")
    assert not state.restart_pending(marker)
    state.note_restart(marker, "dir_modify TO-OUTSIDE")
    state.note_restart(marker, "dir_create TO-OUTSIDE-REVERSE")
    assert state.restart_pending(marker)
    assert open(marker, encoding="utf-8").read().splitlines() == ["dir_modify TO-OUTSIDE", "dir_create TO-OUTSIDE-REVERSE"]
    state.clear_restart(marker)
    state.clear_restart(marker)  # twice: no error
    assert not state.restart_pending(marker)


def test_baseline_per_server_upper_case(tmp_path):
    path = str(tmp_path / state.BASELINE_FILE)
    assert state.evidence_baseline(path, "exin") is None
    state.record_baseline(path, {"exin": "2026-01-01T00:10:00Z"})
    state.record_baseline(path, {"EXOUT": "2026-01-01T00:11:00Z"})
    assert state.evidence_baseline(path, "EXIN") == "2026-01-01T00:10:00Z"
    assert state.evidence_baseline(path, "exout") == "2026-01-01T00:11:00Z"


def test_journal_appends_and_is_checksummed(tmp_path):
    path = state.journal_path(str(tmp_path), "EXIN")
    state.journal_append(path, {"n": 1})
    state.journal_append(path, {"n": 2})
    assert state.read_verified_json(path) == [{"n": 1}, {"n": 2}]


def test_default_state_dir_is_beside_ansible_cfg(tmp_path):
    assert state.default_state_dir(str(tmp_path / "ansible.cfg")) == str(tmp_path / "reports" / "state")
