"""Per-link transactions (xcon.transaction): a link's later steps wait for all its earlier ones."""

from __future__ import annotations

from xcon import transaction as txn

TUNNEL = [
    {"id": "A#1", "link": "A", "step": 1, "phase": "firewall_tunnel_open", "target": "FW1", "kind": "firewall"},
    {"id": "A#2", "link": "A", "step": 2, "phase": "stack_repoint", "target": "EXIN", "kind": "connector"},
    {"id": "A#3", "link": "A", "step": 3, "phase": "stack_repoint_outside", "target": "EXOUT", "kind": "connector"},
    {"id": "A#4", "link": "A", "step": 4, "phase": "firewall_tunnel_close", "target": "FW1", "kind": "firewall"},
    {"id": "B#1", "link": "B", "step": 1, "phase": "precondition", "target": "EXIN", "kind": "connector"},
    {"id": "B#2", "link": "B", "step": 2, "phase": "reverse_connector", "target": "EXIN", "kind": "connector"},
]
OK = {"ok": True, "reason": ""}
BACKUPS = {"EXIN": OK, "EXOUT": OK}


def test_a_failure_stops_only_its_link_and_says_where():
    outcomes = {"A#1": OK, "A#2": {"ok": False, "reason": "connection dropped"}, "B#1": OK, "B#2": OK}
    states = txn.link_states(TUNNEL, "firewall_tunnel_close", outcomes, BACKUPS)
    assert states["stopped"] == ["A"]
    where = states["links"]["A"]["stopped_at"]
    assert (where["step"], where["phase"], where["host"], where["reason"]) == (2, "stack_repoint", "EXIN", "connection dropped")
    assert "relays (old path) are still in place" in where["safe"]
    assert states["links"]["A"]["not_run"] == ["A#2", "A#3", "A#4"]
    assert states["links"]["B"]["state"] == "open"
    line = txn.stop_line("A", states["links"]["A"], "ansible-playbook fix-xcon.yml")
    assert line.startswith("A stopped at step 2 (stack_repoint) on EXIN: connection dropped.") and line.endswith("re-run: ansible-playbook fix-xcon.yml")


def test_a_failed_backup_stops_every_link_with_a_change_on_that_server_before_any_change():
    states = txn.link_states(TUNNEL, "precondition", {}, {"EXIN": {"ok": False, "reason": "dropped"}, "EXOUT": OK})
    assert states["stopped"] == ["A", "B"]
    assert states["links"]["A"]["stopped_at"]["phase"] == "backup" and states["links"]["A"]["stopped_at"]["step"] == 0


def test_steps_of_later_phases_are_not_judged_yet():
    states = txn.link_states(TUNNEL, "stack_repoint", {"A#1": OK, "B#1": OK, "B#2": OK}, BACKUPS)
    assert states["stopped"] == [] and states["links"]["A"]["state"] == "open"


def test_a_change_that_never_ran_stops_its_link():
    states = txn.link_states(TUNNEL, "stack_repoint_outside", {"A#1": OK}, BACKUPS, host_errors={"EXIN": "role failed"})
    assert states["links"]["A"]["stopped_at"]["reason"] == "role failed"


def test_restart_withheld_where_it_would_activate_a_stopped_links_applied_change():
    outcomes = {"A#1": OK, "A#2": OK, "A#3": {"ok": False, "reason": "x"}, "B#1": OK, "B#2": OK}
    states = txn.link_states(TUNNEL, "mta_restart", outcomes, BACKUPS)
    assert states["stopped"] == ["A"]
    assert states["restart_withheld"] == {"EXIN": ["A"]}  # EXOUT's change failed: nothing to activate there
    assert txn.link_states(TUNNEL, "stack_repoint", outcomes, BACKUPS)["restart_withheld"] == {}


def test_final_view_complete_or_stopped_at_the_restart():
    outcomes = {"A#1": OK, "A#2": OK, "A#3": OK, "A#4": OK, "B#1": OK, "B#2": OK}
    states = txn.link_states(TUNNEL, "final", outcomes, BACKUPS, restarts={"EXIN": OK, "EXOUT": {"ok": False, "reason": "denied"}})
    assert states["links"]["B"]["state"] == "complete"
    assert states["links"]["A"]["stopped_at"]["step"] == "restart" and states["links"]["A"]["stopped_at"]["host"] == "EXOUT"
