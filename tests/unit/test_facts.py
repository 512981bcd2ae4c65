"""The facts ledger: every assumption lives in profile.ASSUMPTIONS, is read by the code and is
listed in docs/facts.md (issue 11, item 11)."""
from __future__ import annotations

import ast
import os
import re

from xcon import profile

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CODE_DIRS = [os.path.join(ROOT, "module_utils", "xcon"), os.path.join(ROOT, "action_plugins")]
FACTS = os.path.join(ROOT, "docs", "facts.md")


def read_keys(dirs=CODE_DIRS):
    """String constants the code reads as a key: ``x["name"]`` and ``x.get("name")`` (a dict
    literal's keys, such as ASSUMPTIONS itself, are not reads)."""
    found = set()
    for folder in dirs:
        for base, _dirs, files in os.walk(folder):
            for name in files:
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(base, name), encoding="utf-8") as handle:
                    tree = ast.parse(handle.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                        found.add(node.slice.value)
                    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                          and node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant)):
                        found.add(node.args[0].value)
    return found


def unread(assumptions, keys):
    return sorted(name for name in assumptions if name not in keys)


def test_every_assumption_is_read_by_the_code():
    assert unread(profile.ASSUMPTIONS, read_keys()) == [], "assumptions nothing reads: remove them or use them"


def test_the_check_fails_on_an_assumption_nothing_reads():
    keys = read_keys()
    assert unread(dict(profile.ASSUMPTIONS, schedule_grid_opaque=True), keys) == ["schedule_grid_opaque"]


def test_every_assumption_is_documented_and_in_the_ledger():
    with open(FACTS, encoding="utf-8") as handle:
        ledger = handle.read()
    assert set(profile.ASSUMPTION_NOTES) == set(profile.ASSUMPTIONS)
    for name in profile.ASSUMPTIONS:
        assert f'ASSUMPTIONS["{name}"]' in ledger or f'["{name}"]' in ledger, name
    # and the ledger names no assumption the code does not have
    named = set(re.findall(r'ASSUMPTIONS\["([a-z0-9_]+)"\]', ledger)) | set(re.findall(r'`\["([a-z0-9_]+)"\]`', ledger))
    assert named <= set(profile.ASSUMPTIONS), named - set(profile.ASSUMPTIONS)


def test_every_ledger_row_has_a_status_and_a_source():
    with open(FACTS, encoding="utf-8") as handle:
        rows = [line for line in handle if line.startswith("| ") and not line.startswith("| fact") and "---" not in line]
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert len(cells) >= 4, row
        assert re.match(r"(CONFIRMED|ASSUMED)", cells[1]), row
        assert cells[2], row


def test_ldap_port_and_organisation_are_validated_before_any_host_is_contacted():
    from xcon import inputs

    messages = inputs.validate({"EXIN": {"xcon_ldap_port": "70000", "xcon_organization": " CONTOSO"},
                                "EXOUT": {"xcon_ldap_port": 390, "xcon_organization": "CONTOSO"}})
    assert len(messages) == 2, messages
    assert any(m.startswith("xcon_ldap_port='70000' (seen by EXIN)") for m in messages), messages
    assert any(m.startswith("xcon_organization=' CONTOSO'") and "space" in m for m in messages), messages
