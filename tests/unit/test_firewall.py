"""The firewall driver model: facts, steps, idempotence, inverses, confirmed-state overlay."""

import json

import pytest

from xcon import firewall as fw

DECLARED = {
    "product": "raptor-eagle-5",
    "inside": ["EXIN"],
    "outside": ["EXOUT"],
    "interfaces": {"internal": "192.0.2.1", "external": "198.51.100.1"},
    "passers": [{"port": 102, "interface": "external", "target": "EXIN"}, {"port": 102, "interface": "internal", "target": "EXOUT"}],
    "routed_paths": [],
    "client_transparency": "true",
}
TUNNEL = [
    {"action": "add_routed_path", "hosts": ["EXIN", "EXOUT"], "port": 102},
    {"action": "remove_passer", "port": 102, "interface": "external", "target": "EXIN"},
    {"action": "remove_passer", "port": 102, "interface": "internal", "target": "EXOUT"},
]


def apply_step(facts, step):
    """(facts after `step`, whether it changed anything), through xcon.firewall.pending_steps."""
    pending, after = fw.pending_steps(facts, [step])
    return after, bool(pending)


def test_normalize_coerces_types():
    facts = fw.normalize_facts("FW1", DECLARED)
    assert facts["client_transparency"] is True
    assert [p["target"] for p in facts["passers"]] == ["EXIN", "EXOUT"]


def test_pending_steps_are_idempotent():
    facts = fw.normalize_facts("FW1", DECLARED)
    pending, after = fw.pending_steps(facts, TUNNEL)
    assert pending == TUNNEL
    assert after["passers"] == [] and after["routed_paths"] == [{"hosts": ["EXIN", "EXOUT"], "port": 102}]
    again, _ = fw.pending_steps(after, TUNNEL)
    assert again == []


def test_routed_path_host_order_does_not_matter():
    facts = fw.normalize_facts("FW1", dict(DECLARED, routed_paths=[{"hosts": ["EXOUT", "EXIN"], "port": 102}]))
    pending, _ = fw.pending_steps(facts, TUNNEL[:1])
    assert pending == []


def test_inverse_steps_restore_the_facts():
    facts = fw.normalize_facts("FW1", DECLARED)
    steps = TUNNEL + [{"action": "set_transparency", "value": False}]
    _, after = fw.pending_steps(facts, steps)
    _, restored = fw.pending_steps(after, [fw.inverse_step(s) for s in reversed(steps)])
    for key in ("passers", "routed_paths", "client_transparency"):
        assert restored[key] == facts[key]


@pytest.mark.parametrize("step, message", [
    ({"action": "open_everything"}, "unknown firewall step"),
    ({"action": "remove_passer", "port": 102}, "missing interface, target"),
    ({"action": "add_routed_path", "hosts": ["EXIN"], "port": 102}, "exactly two"),
    ({"action": "set_transparency"}, "missing value"),
])
def test_malformed_steps_are_refused(step, message):
    with pytest.raises(fw.FirewallError, match=message):
        apply_step(fw.normalize_facts("FW1", DECLARED), step)


def test_confirmed_state_overlays_the_declaration(tmp_path):
    state_file = tmp_path / "FW1.json"
    facts = fw.normalize_facts("FW1", DECLARED)
    _, after = fw.pending_steps(facts, TUNNEL)
    fw.record_confirmed(str(state_file), after, {"run_id": "r1", "steps": TUNNEL})
    overlaid = fw.facts_with_state("FW1", DECLARED, str(state_file))
    assert overlaid["passers"] == [] and overlaid["source"] == "inventory+confirmed-records"
    assert overlaid["confirmed_records"] == ["r1"]
    assert json.loads(state_file.read_text())["records"][0]["steps"] == TUNNEL
