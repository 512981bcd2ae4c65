"""actions/diagnose.analyse: the executable plan (phases, module args, inverses, preflight)."""

from __future__ import annotations

import pytest

from test_diagnose import Topology, connector, EXIN_ADDR, EXOUT_ADDR  # noqa: F401  (shared factories)
from xcon import firewall as fw
from xcon.actions.diagnose import analyse, planned_by_target, target_groups


def _servers(topo, write_access=True):
    servers = topo.servers()
    for name, server in servers.items():
        server["inventory_host"] = name
        server["write_access"] = write_access
    return servers


def _plan(topo, workaround, **options):
    return analyse(_servers(topo, options.pop("write_access", True)), [topo.firewall], workaround, options)


def test_tunnel_phases_follow_the_documented_order():
    links, plan, preflight = _plan(Topology.kb(), "firewall_tunnel")
    assert preflight == []
    phases = [p["phase"] for p in plan]
    assert phases == ["firewall_tunnel_open", "stack_repoint", "stack_repoint_outside", "firewall_tunnel_close"]
    assert [p["target"] for p in plan if p["phase"].startswith("stack_repoint")] == ["EXIN", "EXOUT"]  # inside first
    assert plan[0]["args"] == [{"action": "add_routed_path", "hosts": ["EXIN", "EXOUT"], "port": 102}]
    repoint = {p["args"]["name"]: p["args"]["stack_address"] for p in plan if p["phase"].startswith("stack_repoint")}
    assert repoint == {"TO-OUTSIDE": EXOUT_ADDR, "TO-INSIDE": EXIN_ADDR}
    assert [s["action"] for s in plan[-1]["inverse"]] == ["add_passer"] * len(plan[-1]["args"])
    assert [p["id"] for p in plan] == [f"EXIN<->EXOUT#{n}" for n in range(1, 5)]
    assert links[0]["changes"][0]["target"] == "FW1"


def test_reverse_connector_entry_carries_the_clone_arguments():
    _, plan, _ = _plan(Topology.kb(), "reverse_connector")
    (entry,) = plan
    assert entry["phase"] == "reverse_connector" and entry["action"] == "create" and entry["target"] == "EXIN"
    assert entry["args"] == {"server": "EXIN", "name": "TO-OUTSIDE-REVERSE", "clone_from": "TO-OUTSIDE", "schedule": "remote",
                             "stack_address": EXOUT_ADDR, "address_type": "ip", "cost": 99,
                             "display_name": entry["args"]["display_name"]}


def test_preconditions_come_first_and_are_phase_precondition():
    topo = Topology.kb()
    topo.in_conn["two_way_alternate"] = False
    _, plan, _ = _plan(topo, "reverse_connector")
    assert plan[0]["phase"] == "precondition" and plan[0]["args"] == {"server": "EXIN", "name": "TO-OUTSIDE", "two_way_alternate": True}
    assert plan[1]["phase"] == "reverse_connector"


def test_transparency_off_without_acknowledgement_is_a_preflight_error_and_plans_nothing():
    links, plan, preflight = _plan(Topology.kb(), "transparency_off")
    assert plan == [] and len(preflight) == 1 and "xcon_transparency_off_acknowledged" in preflight[0]
    links, plan, preflight = _plan(Topology.kb(), "transparency_off", transparency_off_acknowledged=True)
    assert [p["phase"] for p in plan] == ["transparency_off"] and preflight == []
    assert plan[0]["inverse"] == [{"action": "set_transparency", "value": True, "port": 102}]


def test_read_only_account_makes_the_link_unknown_and_blocks_the_fix():
    links, plan, preflight = _plan(Topology.kb(), "reverse_connector", write_access=False)
    codes = {f["code"]: f["severity"] for f in links[0]["findings"]}
    assert codes["XCON-ACCESS-DENIED"] == "unknown"
    assert links[0]["status"] == "error"  # the KB fault is still seen and reported
    assert any("may not modify" in e for e in preflight)


def test_healthy_link_plans_nothing_and_a_fixed_one_replans_nothing():
    topo = Topology()
    _, plan, _ = _plan(topo, "auto")
    assert plan == []
    kb = Topology.kb()
    _, plan, _ = _plan(kb, "firewall_tunnel")
    facts = fw.normalize_facts("FW1", kb.firewall)
    for entry in plan:
        if entry["action"] == "operator":
            facts, _ = fw.pending_steps(facts, entry["args"])[1], None
        else:
            conn = kb.in_conn if entry["args"]["name"] == "TO-OUTSIDE" else kb.out_conn
            conn["stack_address"] = entry["args"]["stack_address"]
    kb.firewall = facts
    kb.out_events, kb.in_events, kb.out_queue = [], [], 0
    _, again, _ = _plan(kb, "firewall_tunnel")
    assert again == []


def test_each_target_gets_only_its_own_entries_and_the_groups_of_its_kinds_of_change():
    _, plan, _ = _plan(Topology.kb(), "firewall_tunnel")
    planned = planned_by_target(plan, sorted({p["target"] for p in plan} | {"PENDING"}))
    assert planned["FW1"]["groups"] == ["xcon_targets", "xcon_targets_firewall_tunnel_open", "xcon_targets_firewall_tunnel_close"]
    assert planned["EXIN"]["groups"] == ["xcon_targets", "xcon_targets_stack_repoint"]
    assert [e["args"]["name"] for e in planned["EXIN"]["changes"]["stack_repoint"]] == ["TO-OUTSIDE"]
    assert planned["EXOUT"]["groups"] == ["xcon_targets", "xcon_targets_stack_repoint_outside"]
    assert [e["args"]["name"] for e in planned["EXOUT"]["changes"]["stack_repoint_outside"]] == ["TO-INSIDE"]
    # A target without planned changes (an MTA restart left pending) is in xcon_targets only.
    assert planned["PENDING"] == {"groups": ["xcon_targets"], "changes": {}}
    assert sum(len(v) for t in planned.values() for v in t["changes"].values()) == len(plan)
    # the change plays' hosts (remediate.yml): each group's members, in a stable order
    assert target_groups(planned) == {
        "xcon_targets": ["EXIN", "EXOUT", "FW1", "PENDING"],
        "xcon_targets_stack_repoint": ["EXIN"], "xcon_targets_stack_repoint_outside": ["EXOUT"],
        "xcon_targets_firewall_tunnel_open": ["FW1"], "xcon_targets_firewall_tunnel_close": ["FW1"],
    }


def test_a_server_the_account_may_not_modify_is_never_called_healthy():
    """Issue 14: the write-access finding was added after the policy chose, so a healthy but
    read-only link said "The link is healthy; no workaround is needed"."""
    from test_diagnose import healthy

    topo, _ = healthy()
    servers = _servers(topo)
    servers["EXOUT"]["write_access"] = False
    links, plan, _ = analyse(servers, [topo.firewall], "auto", {})
    (link,) = links
    assert link["status"] == "unknown"
    assert [(f["code"], f["host"]) for f in link["findings"]] == [("XCON-ACCESS-DENIED", "EXOUT")]
    assert link["recommended_workaround"] == "none" and "healthy" not in link["reason"]
    assert "may read but not modify" in link["reason"] and link["workaround_reason"] == link["reason"]
    assert plan == []


@pytest.mark.parametrize("requested, calls", [("auto", 1), ("reverse_connector", 2)])
def test_the_workaround_policy_runs_once_per_link_and_question(monkeypatch, requested, calls):
    """Issue 14: select_workaround ran three times per link (diagnose, the action, plan). Now once
    for the recommendation, once more only for an explicit request, and plan uses the answer."""
    import xcon.diagnose as dx

    seen = []
    real = dx.select_workaround

    def counting(link, wanted, *args, **kwargs):
        seen.append((link["id"], wanted))
        return real(link, wanted, *args, **kwargs)

    monkeypatch.setattr(dx, "select_workaround", counting)
    links, plan, _ = _plan(Topology.kb(), requested)
    assert len(seen) == calls and plan
    assert links[0]["workaround_chosen"] == ("firewall_tunnel" if requested == "auto" else requested)
