"""The diagnosis travels between tasks by file (xcon.diagnosis_file): the registered result keeps
what the playbook's tasks use, the file the rest, checked against its checksum; xcon_report and
xcon_verify still take the diagnosis inline (their documented faces before the file)."""

from __future__ import annotations

import json

import pytest

from xcon import diagnosis_file


def _diagnosis():
    links = [{"id": "A<->B", "status": "error", "topology": {"big": "x" * 5000}},
             {"id": "C<->D", "status": "ok", "topology": {"big": "y" * 5000}}]
    plan = [{"id": "A<->B#1", "link": "A<->B", "target": "A"}, {"id": "C<->D#1", "link": "C<->D", "target": "C"}]
    return {"links": links, "plan": plan, "servers": {"A": {"name": "A"}}, "lines": ["A<->B: ERROR"], "targets": ["A", "C"],
            "planned": {"A": {"groups": ["xcon_targets"], "changes": {}}}, "preflight_errors": [], "unreadable_hosts": {},
            "workaround_requested": "auto", "report_paths": {"json": "r.json"}, "coverage_problems": [], "audit_at": "2026-01-05T10:00:00Z",
            "hosts_scanned": ["A", "B", "C", "D"], "connection_password": "s3cret-value"}


def test_the_registered_result_is_small_and_the_file_holds_everything(tmp_path):
    registered = diagnosis_file.write(str(tmp_path), _diagnosis())
    assert not {"links", "plan", "servers", "hosts_scanned"} & set(registered)
    assert registered["link_status"] == {"A<->B": "error", "C<->D": "ok"}
    assert registered["lines"] == ["A<->B: ERROR"] and registered["targets"] == ["A", "C"]
    assert len(json.dumps(registered)) < 1000
    whole = diagnosis_file.load(registered["diagnosis_file"])
    assert whole["links"] == _diagnosis()["links"] and whole["plan"] == _diagnosis()["plan"]
    # masked like any result a module returns
    assert whole["connection_password"] == "********"
    assert "s3cret-value" not in (tmp_path / "diagnosis.json").read_text(encoding="utf-8")


def test_a_secret_value_quoted_in_a_message_is_masked_in_the_file_too(tmp_path):
    # as in the report (xcon.mask.mask_data): the value of a secret-named key, wherever it recurs
    diagnosis = dict(_diagnosis(), lines=["A<->B: logon as xcon with s3cret-value refused"])
    diagnosis_file.write(str(tmp_path), diagnosis)
    assert "s3cret-value" not in (tmp_path / "diagnosis.json").read_text(encoding="utf-8")


def test_a_changed_or_missing_file_is_refused(tmp_path):
    path = diagnosis_file.write(str(tmp_path), _diagnosis())["diagnosis_file"]
    text = (tmp_path / "diagnosis.json").read_text(encoding="utf-8")
    (tmp_path / "diagnosis.json").write_text(text.replace('"error"', '"ok"'), encoding="utf-8")
    with pytest.raises(diagnosis_file.DiagnosisFileError, match="checksum"):
        diagnosis_file.load(path)
    with pytest.raises(diagnosis_file.DiagnosisFileError, match="missing"):
        diagnosis_file.load(str(tmp_path / "nosuch.json"))


def test_report_takes_the_file_the_registered_result_or_a_whole_diagnosis_inline(tmp_path):
    registered = diagnosis_file.write(str(tmp_path), _diagnosis())
    by_file = diagnosis_file.from_options(registered["diagnosis_file"], None)
    by_result = diagnosis_file.from_options(None, registered)
    inline = diagnosis_file.from_options(None, _diagnosis())
    assert by_file == by_result
    assert by_file["links"] == inline["links"] and by_file["hosts_scanned"] == inline["hosts_scanned"]


def test_verify_takes_the_file_or_links_inline_without_the_skipped_links(tmp_path):
    path = diagnosis_file.write(str(tmp_path), _diagnosis())["diagnosis_file"]
    links, plan = diagnosis_file.links_and_plan({"diagnosis_file": path, "skip_links": ["C<->D"]})
    assert [l["id"] for l in links] == ["A<->B"] and [e["id"] for e in plan] == ["A<->B#1"]
    links, plan = diagnosis_file.links_and_plan({"links": _diagnosis()["links"], "plan": _diagnosis()["plan"], "skip_links": []})
    assert [l["id"] for l in links] == ["A<->B", "C<->D"] and len(plan) == 2


def _kb_run(tmp_path, check_mode, preview, diff=True):
    from diagnose_helpers import Topology
    from xcon.actions.diagnose import diagnose_and_report

    topo = Topology.kb()
    servers = topo.servers()
    for name, server in servers.items():
        server.update(inventory_host=name, write_access=True, name=name, exchange_version="5.5", address=None, fqdn=None)
    args = {"queue_threshold": 10, "reverse_connector_name": "", "address_type": "ip", "firewall_changes_possible": True,
            "transparency_off_acknowledged": False, "workaround": "firewall_tunnel", "exchange_hosts": sorted(servers),
            "firewall_hosts": ["FW1"], "state_dir": None, "run_id": "20260105T090000Z-abcdef",
            "run_dir": str(tmp_path / "20260105T090000Z-abcdef"), "saved_run_dir": None, "preview_on_servers": preview}
    return diagnose_and_report(servers, [topo.firewall], args, check_mode, "0.1.0", diff=diff)


def _planned(registered):
    return diagnosis_file.load(registered["diagnosis_file"])["planned"]


def test_under_check_only_the_firewalls_take_part_unless_the_servers_preview(tmp_path):
    audit = _kb_run(tmp_path, check_mode=True, preview=False)
    assert set(audit["targets"]) == {"EXIN", "EXOUT", "FW1"} and set(_planned(audit)) == {"FW1"}
    assert audit["target_groups"]["xcon_targets"] == ["FW1"]
    assert {"EXIN", "FW1"} <= set(_planned(_kb_run(tmp_path, check_mode=True, preview=True)))
    fix = _kb_run(tmp_path, check_mode=False, preview=False)
    assert set(_planned(fix)) == {"EXIN", "EXOUT", "FW1"}
    # the whole plan is in the file either way
    whole = diagnosis_file.load(audit["diagnosis_file"])
    assert {e["target"] for e in whole["plan"]} == {"EXIN", "EXOUT", "FW1"}


def test_the_plan_entries_are_not_registered_only_each_servers_mta_service(tmp_path):
    fix = _kb_run(tmp_path, check_mode=False, preview=False)
    assert "planned" not in fix and "plan" not in fix
    assert fix["mta_services"] == {"EXIN": "MSExchangeMTA", "EXOUT": "MSExchangeMTA"}
    assert set(fix["target_groups"]["xcon_targets_stack_repoint"]) <= {"EXIN", "EXOUT"}


def test_the_check_mode_diff_is_there_only_under_diff(tmp_path):
    with_diff = _kb_run(tmp_path, check_mode=True, preview=False)
    assert with_diff["diff"] and all("before" in d and "after" in d for d in with_diff["diff"])
    without = _kb_run(tmp_path, check_mode=True, preview=False, diff=False)
    assert "diff" not in without and without["changed"] is True
