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
