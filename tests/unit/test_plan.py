"""Tests of xcon.plan: the changes of each workaround, their order, idempotence, acknowledgement."""

from __future__ import annotations

import copy

import pytest

from test_diagnose import EXIN_ADDR, EXOUT_ADDR, FW_INTERNAL, Topology, connector, event, triple
from xcon import diagnose as dx
from xcon import firewall as fw
from xcon import plan
from test_firewall import apply_step


def diagnosed(topo, options=None, requested="auto"):
    return dx.diagnose(topo.servers(), [topo.firewall], options, requested)[0]


def planned(topo, workaround, options=None):
    link = diagnosed(topo, options, workaround)
    return plan.plan_changes(link, topo.servers(), topo.firewall, workaround, options)


def summary(changes):
    return [(c["step"], c["target"], c["action"], c["object"]) for c in changes]


def apply(topo, changes):
    """Carry out the planned changes on the factory state, then clear the fault's evidence (the
    state after a successful fix) - so that planning again must yield nothing."""
    by_host = {"EXIN": [topo.in_conn] + topo.extra_in, "EXOUT": [topo.out_conn] + topo.extra_out}
    for change in changes:
        if change["kind"] == "firewall":
            for step in change["firewall_steps"]:
                facts, _ = apply_step(topo.firewall, step)
                topo.firewall.update(facts)
        elif change["action"] == "create":
            source = next(c for c in by_host[change["target"]] if c["name"] == change["after"]["clone_of"])
            clone = copy.deepcopy(source)
            clone.update({k: v for k, v in change["after"].items() if k != "clone_of"})
            topo.extra_in.append(clone)
        else:
            target = next(c for c in by_host[change["target"]] if c["name"] == change["object"])
            target.update(change["after"])
    topo.in_events, topo.out_events, topo.out_queue = [], [], 0


# -- reverse connector ----------------------------------------------------------------------------
def test_reverse_connector_is_a_clone_with_four_differences():
    changes = planned(Topology.kb(), "reverse_connector")
    assert summary(changes) == [(1, "EXIN", "create", "TO-OUTSIDE-REVERSE")]
    change = changes[0]
    assert change["after"] == {"name": "TO-OUTSIDE-REVERSE", "display_name": "X.400 TO-OUTSIDE (reverse, remote initiated)",
                               "schedule": "remote", "stack_address": EXOUT_ADDR, "address_type": "ip", "cost": 99,
                               "clone_of": "TO-OUTSIDE"}
    assert change["before"] == {} and change["applied"] is False and change["restart_required"] is True
    assert change["link"] == "EXIN<->EXOUT"


def test_reverse_connector_name_and_hostname_options():
    options = {"reverse_connector_name": "FROM-OUTSIDE", "address_type": "hostname"}
    change = planned(Topology.kb(), "reverse_connector", options)[0]
    assert change["after"]["name"] == "FROM-OUTSIDE"
    assert change["after"]["stack_address"] == "exout.contoso.com"
    assert change["after"]["address_type"] == "hostname"


def test_wrong_reverse_connector_is_repaired_not_duplicated():
    topo = Topology.kb()
    topo.extra_in = [connector("TO-OUTSIDE-REVERSE", "EXIN", "INSIDE", "EXOUT", "10.1.1.1", schedule="remote", cost=99)]
    changes = planned(topo, "auto")
    assert summary(changes) == [(1, "EXIN", "modify", "TO-OUTSIDE-REVERSE")]
    assert changes[0]["before"] == {"stack_address": "10.1.1.1"}
    assert changes[0]["after"] == {"stack_address": EXOUT_ADDR}


def test_preconditions_come_first():
    topo = Topology.kb()
    topo.in_conn["two_way_alternate"] = False
    topo.out_conn["schedule"] = "selected"
    changes = planned(topo, "reverse_connector")
    assert summary(changes) == [(1, "EXIN", "modify", "TO-OUTSIDE"), (2, "EXOUT", "modify", "TO-INSIDE"),
                                (3, "EXIN", "create", "TO-OUTSIDE-REVERSE")]
    assert changes[0]["before"] == {"two_way_alternate": False} and changes[0]["after"] == {"two_way_alternate": True}
    assert changes[1]["before"] == {"schedule": "selected"} and changes[1]["after"] == {"schedule": "always"}


def test_never_is_fixed_by_the_preconditions_alone():
    topo = Topology.kb()
    topo.in_conn["schedule"] = "never"
    topo.in_events = [event(37, topo.in_conn)]
    topo.out_events = triple(topo.out_conn)
    changes = planned(topo, "auto")
    assert summary(changes) == [(1, "EXIN", "modify", "TO-OUTSIDE")]
    assert changes[0]["after"] == {"schedule": "always"}


def test_both_remote_initiated_gets_both_sides_always():
    topo = Topology()
    topo.in_conn["schedule"] = topo.out_conn["schedule"] = "remote"
    assert [c["after"] for c in planned(topo, "auto")] == [{"schedule": "always"}, {"schedule": "always"}]


# -- firewall tunnel ------------------------------------------------------------------------------
def test_tunnel_order_is_path_then_repoint_then_relay_removal():
    changes = planned(Topology.kb(), "firewall_tunnel")
    assert summary(changes) == [
        (1, "FW1", "operator", "routed path EXIN<->EXOUT tcp/102"),
        (2, "EXIN", "modify", "TO-OUTSIDE"),
        (3, "EXOUT", "modify", "TO-INSIDE"),
        (4, "FW1", "operator", "service passers on tcp/102"),
    ]
    assert changes[0]["firewall_steps"] == [{"action": "add_routed_path", "hosts": ["EXIN", "EXOUT"], "port": 102}]
    assert changes[1]["before"] == {"stack_address": FW_INTERNAL} and changes[1]["after"] == {"stack_address": EXOUT_ADDR}
    assert changes[2]["after"] == {"stack_address": EXIN_ADDR}
    assert changes[3]["firewall_steps"] == [{"action": "remove_passer", "port": 102, "interface": "external", "target": "EXIN"}]
    assert [c["restart_required"] for c in changes] == [False, True, True, False]
    assert "warning" not in changes[3]


def test_tunnel_warns_about_connectors_that_still_use_the_relay():
    topo = Topology.kb()
    topo.extra_in = [connector("TO-PARTNER", "EXIN", "INSIDE", "EXPARTNER", FW_INTERNAL)]
    last = planned(topo, "firewall_tunnel")[-1]
    assert last["affected_connectors"] == [{"host": "EXIN", "connector": "TO-PARTNER", "stack_address": FW_INTERNAL,
                                            "remote_mta": "EXPARTNER"}]
    assert "TO-PARTNER" in last["warning"]


def test_firewall_change_record_and_instructions():
    topo = Topology.kb()
    changes = planned(topo, "firewall_tunnel")
    record = fw.firewall_change_record(topo.firewall, changes, "run-1")
    assert record == {"version": 1, "firewall": "FW1", "run_id": "run-1", "product": "raptor-eagle-5", "steps": [
        {"action": "add_routed_path", "hosts": ["EXIN", "EXOUT"], "port": 102},
        {"action": "remove_passer", "port": 102, "interface": "external", "target": "EXIN"}]}
    assert fw.firewall_change_record(topo.firewall, record["steps"], "run-1") == record
    raptor = fw.operator_instructions(record, "raptor-eagle-5")
    assert "Raptor Management Console" in raptor and "ASSUMPTION" in raptor and "local tunnel" in raptor
    assert raptor.index("1. ") < raptor.index("2. ")
    sgmi = fw.operator_instructions(record, "sef-8")
    assert "SGMI" in sgmi and "Activate" in sgmi
    assert "not one the toolkit knows" in fw.operator_instructions(record, "acme-wall")


def test_record_rejects_malformed_steps():
    with pytest.raises(fw.FirewallError):
        fw.firewall_change_record({"name": "FW1"}, [{"action": "explode"}], "run-1")


# -- transparency off -----------------------------------------------------------------------------
def test_transparency_off_needs_acknowledgement():
    with pytest.raises(plan.PlanError, match="xcon_transparency_off_acknowledged"):
        planned(Topology.kb(), "transparency_off")


def test_transparency_off_with_acknowledgement():
    changes = planned(Topology.kb(), "transparency_off", {"transparency_off_acknowledged": True})
    assert summary(changes) == [(1, "FW1", "operator", "client-side transparency (TCP 102 rule)")]
    change = changes[0]
    assert change["before"] == {"client_transparency": True} and change["after"] == {"client_transparency": False}
    assert change["firewall_steps"] == [{"action": "set_transparency", "value": False, "port": 102}]  # the records name the MTA port
    assert "every server behind this firewall" in change["side_effect"]
    text = fw.operator_instructions(fw.firewall_change_record(Topology.kb().firewall, changes, "r"), "sgs-5400")
    assert "Use Gateway Address" in text and "Side effect" in text


# -- nothing to do --------------------------------------------------------------------------------
def test_none_plans_nothing_even_for_the_kb_fault():
    assert planned(Topology.kb(), "none") == []


def test_unreadable_link_plans_nothing():
    topo = Topology.kb()
    topo.out_error = {"code": dx.UNREACHABLE, "reason": "timeout"}
    assert planned(topo, "auto") == []
    assert planned(topo, "reverse_connector") == []


@pytest.mark.parametrize("workaround,options", [
    ("auto", {}),
    ("reverse_connector", {}),
    ("firewall_tunnel", {}),
    ("transparency_off", {"transparency_off_acknowledged": True}),
])
def test_idempotent_on_the_fixed_state(workaround, options):
    topo = Topology.kb()
    topo.in_conn["two_way_alternate"] = False
    first = planned(topo, workaround, options)
    assert first
    apply(topo, first)
    link = diagnosed(topo, options)
    assert link["status"] == "ok", link["findings"]
    for again in (workaround, "auto"):
        assert planned(topo, again, options) == []


def test_explicit_tunnel_completes_a_half_done_tunnel():
    topo = Topology()
    topo.in_conn["stack_address"] = EXOUT_ADDR
    topo.out_conn["stack_address"] = EXIN_ADDR
    topo.firewall["routed_paths"] = [{"hosts": ["EXOUT", "EXIN"], "port": 102}]
    assert diagnosed(topo)["status"] == "ok"
    assert summary(planned(topo, "firewall_tunnel")) == [(1, "FW1", "operator", "service passers on tcp/102")]
    assert planned(topo, "auto") == []


# -- passers on alias addresses (many links through one firewall) ---------------------------------
ALIAS_INTERNAL = "192.0.2.121"
ALIAS_EXTERNAL = "198.51.100.121"


def kb_behind_aliases():
    """The KB fault on a link whose relays listen on alias addresses, not on the interfaces."""
    topo = Topology.kb()
    topo.in_conn["stack_address"] = ALIAS_INTERNAL
    topo.out_conn["stack_address"] = ALIAS_EXTERNAL
    topo.firewall["passers"] = [{"port": 102, "interface": "external", "target": "EXIN", "address": ALIAS_EXTERNAL},
                                {"port": 102, "interface": "internal", "target": "EXOUT", "address": ALIAS_INTERNAL}]
    return topo


def test_alias_addresses_are_firewall_addresses():
    link = diagnosed(kb_behind_aliases())
    codes = {f["code"] for f in link["findings"]}
    assert dx.TRANSPARENCY_REFUSAL in codes and dx.STACK_ADDRESS not in codes
    assert link["status"] == "error" and link["recommended_workaround"] == "firewall_tunnel"


def test_alias_of_another_link_is_not_this_links_firewall_address():
    topo = kb_behind_aliases()
    for passer in topo.firewall["passers"]:
        passer["target"] = {"EXIN": "EXIN2", "EXOUT": "EXOUT2"}[passer["target"]]
    link = diagnosed(topo)
    assert dx.STACK_ADDRESS in {f["code"] for f in link["findings"]}


def test_tunnel_removes_the_alias_passers_and_rollback_puts_them_back():
    topo = kb_behind_aliases()
    before = copy.deepcopy(topo.firewall["passers"])
    changes = planned(topo, "firewall_tunnel")
    assert changes[1]["before"] == {"stack_address": ALIAS_INTERNAL}
    last = changes[-1]
    assert sorted(last["firewall_steps"], key=lambda s: s["interface"]) == [
        {"action": "remove_passer", "port": 102, "interface": "external", "target": "EXIN", "address": ALIAS_EXTERNAL},
        {"action": "remove_passer", "port": 102, "interface": "internal", "target": "EXOUT", "address": ALIAS_INTERNAL}]
    facts = copy.deepcopy(topo.firewall)
    for step in last["firewall_steps"]:
        facts, changed = apply_step(facts, step)
        assert changed
    assert facts["passers"] == []
    for step in reversed(last["firewall_steps"]):
        facts, changed = apply_step(facts, fw.inverse_step(step))
        assert changed
    key = lambda p: (p["interface"], p["target"])  # noqa: E731
    assert sorted(facts["passers"], key=key) == sorted(before, key=key)
    record = fw.firewall_change_record(topo.firewall, last["firewall_steps"], "run-1")
    assert f"external ({ALIAS_EXTERNAL}) interface" in fw.operator_instructions(record, "raptor-eagle-5")
