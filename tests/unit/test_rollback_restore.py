"""Rollback's decisions, on the live code (xcon_connector's plan_restore and journal_entry,
xcon_rollback_plan's load_run): only what the run wrote, only where it still holds it; three values
otherwise; checked run ids and checksums."""

from __future__ import annotations

import os

import pytest

from xcon import state
from xcon.actions.connector import journal_entry, plan_restore
from xcon.actions.rollback_plan import load_run
from xcon.profile import get_profile

PROFILE = get_profile("5.5")
DN = "cn=TO-INSIDE,cn=Connections,cn=OUTSIDE,o=CONTOSO"


def _entry(**attributes):
    base = {"rdn": "TO-INSIDE", "N-Address": "3139382e35312e3130302e31", "N-Address-Type": 1, "Activation-Style": 2, "Cost-Note": "x"}
    base.update(attributes)
    return {"dn": DN, "objectClass": ["RFC1006-X400-Link"], "attributes": base}


def _modify(before, changes):
    op = {"op": "dir_modify", "params": {"server": "EXOUT", "dn": DN, "changes": changes}}
    from xcon.actions.connector import apply_changes

    return journal_entry(op, "EXOUT", "TO-INSIDE", before, apply_changes(before, changes))


REPOINT = [{"attribute": "N-Address", "action": "replace", "values": ["3139322e302e322e3130"]}]


def test_journal_keeps_only_the_changed_attributes_before_and_written():
    record = _modify(_entry(), REPOINT)
    assert record["attributes"] == {"N-Address": {"before": "3139382e35312e3130302e31", "written": "3139322e302e322e3130"}}


def test_restore_writes_back_only_what_the_run_changed():
    record = _modify(_entry(), REPOINT)
    # someone changed another attribute since: not the run's, so not touched
    now = _entry(**{"N-Address": "3139322e302e322e3130", "Cost-Note": "edited later"})
    op, after, info = plan_restore(record, now, "EXOUT", profile=PROFILE)
    assert info["rollback"] == "restore"
    assert op["params"]["changes"] == [{"attribute": "N-Address", "action": "replace", "values": ["3139382e35312e3130302e31"]}]
    assert after["attributes"]["Cost-Note"] == "edited later"
    # a second rollback: nothing to do
    op, _, info = plan_restore(record, after, "EXOUT", profile=PROFILE)
    assert op is None and info["rollback"] == "restored_already"


def test_a_value_changed_since_stops_that_object_with_three_values_unless_forced():
    record = _modify(_entry(), REPOINT)
    now = _entry(**{"N-Address": "3230332e302e3131332e3737"})
    op, _, info = plan_restore(record, now, "EXOUT", profile=PROFILE)
    assert op is None and info["rollback"] == "conflict"
    assert info["conflict"]["N-Address"] == {"before": "3139382e35312e3130302e31", "written": "3139322e302e322e3130", "now": "3230332e302e3131332e3737"}
    assert "N-Address: before the run '198.51.100.1', written by the run '192.0.2.10', now '203.0.113.77'" in info["msg"]
    op, _, info = plan_restore(record, now, "EXOUT", force=True, profile=PROFILE)
    assert info["rollback"] == "forced" and op["params"]["changes"][0]["values"] == ["3139382e35312e3130302e31"]


def test_an_attribute_the_run_added_is_cleared_and_enumerations_read_as_names():
    record = _modify(_entry(), [{"attribute": "Activation-Style", "action": "replace", "values": [3]}])
    op, _, info = plan_restore(record, _entry(**{"Activation-Style": 3}), "EXOUT", profile=PROFILE)
    assert op["params"]["changes"] == [{"attribute": "Activation-Style", "action": "replace", "values": [2]}]
    _, _, info = plan_restore(record, _entry(**{"Activation-Style": 0}), "EXOUT", profile=PROFILE)
    assert "Activation-Style: before the run 2 (" in info["msg"] and "written by the run 3 (" in info["msg"]
    added = _modify(_entry(), [{"attribute": "Extra", "action": "replace", "values": ["v"]}])
    op, _, _ = plan_restore(added, _entry(Extra="v"), "EXOUT", profile=PROFILE)
    assert op["params"]["changes"] == [{"attribute": "Extra", "action": "clear", "values": []}]


def test_a_created_connector_is_deleted_only_while_as_created():
    created = _entry(rdn="TO-INSIDE-REVERSE", **{"Activation-Style": 3})
    record = journal_entry({"op": "dir_create"}, "EXOUT", "TO-INSIDE-REVERSE", None, created)
    op, _, info = plan_restore(record, created, "EXOUT", profile=PROFILE)
    assert op["op"] == "dir_delete" and info["rollback"] == "restore"
    edited = _entry(rdn="TO-INSIDE-REVERSE", **{"Activation-Style": 0})
    op, _, info = plan_restore(record, edited, "EXOUT", profile=PROFILE)
    assert op is None and info["rollback"] == "conflict" and "Activation-Style: before the run (absent)" in info["msg"]
    op, _, info = plan_restore(record, edited, "EXOUT", force=True, profile=PROFILE)
    assert op["op"] == "dir_delete" and info["rollback"] == "forced"
    op, _, info = plan_restore(record, None, "EXOUT", profile=PROFILE)
    assert op is None and info["rollback"] == "restored_already"


JOURNAL = [
    {"op": "dir_modify", "name": "A", "dn": "cn=A,cn=Connections,o=X", "attributes": {"N-Address": {"before": "aa", "written": "bb"}}},
    {"op": "dir_modify", "name": "A", "dn": "cn=A,cn=Connections,o=X", "attributes": {"n-address": {"before": "bb", "written": "cc"}}},
    {"op": "dir_create", "name": "B", "dn": "cn=B,cn=Connections,o=X", "attributes": {}}]


def _run(tmp_path, run_id="20261130T000000Z-abcdef", check_mode=False, journal=None):
    """A run whose records agree: the plan's two connector changes on EXOUT (modify A twice, create B)
    and two firewall changes, the transaction record, the backup and the journal."""
    run_dir = tmp_path / run_id
    state.write_json_atomic(str(run_dir / "plan.json"), {"run_id": run_id, "check_mode": check_mode, "journal": True, "plan": [
        {"id": "L#1", "target": "EXOUT", "action": "modify", "args": {"name": "A"}},
        {"id": "L#2", "target": "EXOUT", "action": "modify", "args": {"name": "A"}},
        {"id": "L#3", "target": "EXOUT", "action": "create", "args": {"name": "B"}},
        {"id": "L#4", "target": "FW1", "inverse": [{"action": "add_passer", "n": 1}, {"action": "add_passer", "n": 2}]},
        {"id": "L#5", "target": "FW1", "inverse": [{"action": "remove_routed_path", "n": 3}]}], "firewalls": {}}, checksum=True)
    if not check_mode:
        state.write_json_atomic(str(run_dir / "transaction.json"), {"outcomes": {f"L#{n}": {"ok": True} for n in range(1, 6)}},
                                checksum=True)
        state.write_json_atomic(str(run_dir / "backup" / "EXOUT.json"), {"raw": [{"dn": "cn=A,cn=Connections,o=X", "attributes": {"N-Address": "aa"}}]},
                                checksum=True)
        for entry in JOURNAL if journal is None else journal:
            state.journal_append(state.journal_path(str(run_dir), "EXOUT"), entry)
    return run_id, run_dir


def test_load_run_newest_first_and_firewall_steps_in_reverse_change_order(tmp_path):
    run_id, _ = _run(tmp_path)
    loaded = load_run(str(tmp_path), run_id, ["EXOUT"], ["FW1"])
    assert [w["name"] for w in loaded["writes"]["EXOUT"]] == ["B", "A", "A"]
    assert [s["n"] for s in loaded["firewall_steps"]["FW1"]] == [3, 1, 2]


@pytest.mark.parametrize("bad", ["../x", "/etc", "a/b", "..", "latest", "nope"])
def test_run_ids_are_names_of_existing_run_directories(tmp_path, bad):
    _run(tmp_path)
    (tmp_path / "latest").mkdir()
    with pytest.raises(state.StateError):
        load_run(str(tmp_path), bad, [], [])


def test_a_check_run_is_named_and_a_tampered_file_stops_everything(tmp_path):
    run_id, _ = _run(tmp_path, "CHECK", check_mode=True)
    with pytest.raises(state.StateError, match="was a --check audit"):
        load_run(str(tmp_path), run_id, [], [])
    run_id, run_dir = _run(tmp_path)
    path = str(run_dir / "backup" / "EXOUT.json")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(" ")
    with pytest.raises(state.StateError, match=f"{path} does not match its checksum"):
        load_run(str(tmp_path), run_id, ["EXOUT"], [])
    os.unlink(path + ".sha256")
    with pytest.raises(state.StateError, match="has no checksum"):
        load_run(str(tmp_path), run_id, ["EXOUT"], [])


def test_a_run_without_a_journal_is_not_half_rolled_back(tmp_path):
    run_dir = tmp_path / "OLD"
    state.write_json_atomic(str(run_dir / "plan.json"), {"run_id": "OLD", "plan": [
        {"target": "EXOUT", "action": "modify"}, {"target": "FW1", "action": "operator", "inverse": [{"action": "add_passer"}]}]}, checksum=True)
    state.write_json_atomic(str(run_dir / "backup" / "EXOUT.json"), {"raw": []}, checksum=True)
    with pytest.raises(state.StateError, match="kept no change journal"):
        load_run(str(tmp_path), "OLD", ["EXOUT"], ["FW1"])


@pytest.mark.parametrize("journal, message", [
    ([dict(JOURNAL[0], attributes={"N-Address": {"before": "zz", "written": "bb"}})] + JOURNAL[1:],
     "N-Address before the write is 'zz' in the journal but 'aa' in the backup"),
    (JOURNAL[:2] + [dict(JOURNAL[1], attributes={"N-Address": {"before": "bb", "written": "dd"}})] + JOURNAL[2:],
     "before the write is 'bb' in the journal but 'cc' in the backup \\(or the run's previous write\\)"),
    (JOURNAL + [{"op": "dir_modify", "name": "C", "dn": "cn=C,cn=Connections,o=X", "attributes": {}}], "is no change of the run's plan"),
    (JOURNAL[:2] + [dict(JOURNAL[2], dn="cn=A,cn=Connections,o=X")], "which the backup shows existed before"),
    (JOURNAL[:2], "L#3 .* succeeded on EXOUT .* has no record of that write"),
])
def test_records_that_disagree_are_refused(tmp_path, journal, message):
    """Issue 22, case 2: plan, transaction record, journal and backup must tell one story."""
    run_id, _ = _run(tmp_path, journal=journal)
    with pytest.raises(state.StateError, match=message):
        load_run(str(tmp_path), run_id, ["EXOUT"], ["FW1"])


def test_missing_records_and_symbolic_links_are_refused(tmp_path):
    run_id, run_dir = _run(tmp_path)
    os.rename(run_dir / "journal", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", run_dir / "journal")
    with pytest.raises(state.StateError, match="journal is a symbolic link"):
        load_run(str(tmp_path), run_id, ["EXOUT"], ["FW1"])
    os.unlink(run_dir / "journal")
    with pytest.raises(state.StateError, match="has no record of that write"):
        load_run(str(tmp_path), run_id, ["EXOUT"], ["FW1"])
    os.rename(tmp_path / "elsewhere", run_dir / "journal")
    os.unlink(run_dir / "transaction.json")
    with pytest.raises(state.StateError, match="transaction record .* is missing"):
        load_run(str(tmp_path), run_id, ["EXOUT"], ["FW1"])
