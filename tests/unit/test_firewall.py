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


def _one_by_one(facts, steps):
    """The definition pending_steps keeps to: each step against the rules as lists, in order (an added
    rule re-sorts its list by key; a removed one goes with every rule of its key)."""
    facts = json.loads(json.dumps(facts))
    pending = []
    for step in steps:
        fw.validate_step(step)
        action = step["action"]
        if action in ("add_passer", "remove_passer", "add_routed_path", "remove_routed_path"):
            lists, keyed = ("passers", fw._passer_key) if "passer" in action else ("routed_paths", fw._path_key)
            rules, key = facts[lists], keyed(step)
            present = any(keyed(r) == key for r in rules)
            if action.startswith("remove") and present:
                facts[lists] = [r for r in rules if keyed(r) != key]
            elif action.startswith("add") and not present:
                rule = ({"port": int(step["port"]), "interface": step["interface"], "target": step["target"],
                         **({"address": str(step["address"])} if step.get("address") else {})}
                        if lists == "passers" else {"hosts": list(step["hosts"]), "port": int(step["port"])})
                facts[lists] = sorted(rules + [rule], key=keyed)
            changed = present if action.startswith("remove") else not present
        else:
            value = fw._as_bool(step["value"])
            changed = facts["client_transparency"] != value
            facts["client_transparency"] = value
        if changed:
            pending.append(dict(step))
    return pending, facts


@pytest.mark.parametrize("seed", range(40))
def test_pending_steps_applies_the_steps_in_order_as_lists_would_and_changes_nothing_it_is_given(seed):
    import random

    rng = random.Random(seed)
    hosts = ["EXIN1", "exin1", "EXOUT1", "EXIN2", "X"]
    passer = lambda: {"port": rng.choice([102, 25, "102"]), "interface": rng.choice(["inside", "OUTSIDE", "outside"]), "target": rng.choice(hosts)}
    path = lambda: {"hosts": rng.sample(hosts, 2), "port": rng.choice([102, 25])}

    def step():
        action = rng.choice(["remove_passer", "add_passer", "add_routed_path", "remove_routed_path", "set_transparency"])
        if action == "set_transparency":
            return {"action": action, "value": rng.choice([True, False, "on", "off"])}
        return dict(passer() if "passer" in action else path(), action=action, **({"address": "10.0.0.1"} if rng.random() < 0.2 else {}))

    for _ in range(25):
        facts = {"name": "FW", "passers": [passer() for _ in range(rng.randint(0, 8))],
                 "routed_paths": [path() for _ in range(rng.randint(0, 6))], "client_transparency": rng.choice([True, False])}
        steps = [step() for _ in range(rng.randint(0, 12))]
        given = json.dumps(facts, sort_keys=True)
        assert fw.pending_steps(facts, steps) == _one_by_one(facts, steps)
        assert json.dumps(facts, sort_keys=True) == given
