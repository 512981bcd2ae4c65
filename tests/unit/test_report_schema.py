"""report.json against its shipped JSON Schema (docs/contracts/report.schema.json).

The suite validates every report it writes (tests/conftest.py sets XCON_REPORT_SCHEMA, which
xcon.report.write_report honours); these tests prove that hook is armed and can fail, and that the
schema itself is a valid Draft 2020-12 schema that says what report.md says.
"""

from __future__ import annotations

import copy
import json
import os

import jsonschema
import pytest

from test_report import sample_report
from xcon import report

REPORT_SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "contracts", "report.schema.json")


def _schema():
    with open(REPORT_SCHEMA, encoding="utf-8") as handle:
        return json.load(handle)


def test_schema_is_valid_and_versioned():
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "schema_version" in schema["required"]
    built = sample_report()
    assert built["schema_version"] == report.SCHEMA_VERSION
    jsonschema.validate(built, schema, cls=jsonschema.Draft202012Validator)


def test_every_report_written_under_the_tests_is_validated(tmp_path):
    assert os.environ.get(report.SCHEMA_ENV) == REPORT_SCHEMA, "the suite does not validate the reports it writes"
    good = sample_report(check_mode=False)
    paths = report.write_report(good, str(tmp_path))
    assert os.path.isfile(paths["json"])
    for broken, where in ((lambda r: r.pop("schema_version"), "(top)"),
                          (lambda r: r["links"][0].update(status="broken"), "links/0/status"),
                          (lambda r: r["links"][0]["findings"][0].update(code="TRANSPARENCY"), "links/0/findings/0/code")):
        bad = copy.deepcopy(good)
        bad["run_id"] = "bad-run"
        broken(bad)
        with pytest.raises(ValueError, match=where):
            report.write_report(bad, str(tmp_path))
        assert not os.path.exists(tmp_path / "bad-run"), "an invalid report was written"


def test_no_field_says_the_same_thing_twice():
    built = sample_report(check_mode=False)
    for link in built["links"]:
        for change in link["changes"]:
            assert "link" not in change, "a change repeats its link's id"


def test_status_after():
    base = {"status": "error", "changes": [{"applied": True}], "verification": {"state": "passed"}}
    assert report.status_after(base, check_mode=True) is None
    assert report.status_after(base, check_mode=False) == "ok"
    assert report.status_after(dict(base, verification={"state": "failed"}), False) == "error"
    assert report.status_after(dict(base, verification={"state": "not_run"}), False) == "unknown"
    assert report.status_after({"status": "warning", "changes": [], "verification": {"state": "not_run"}}, False) == "warning"
