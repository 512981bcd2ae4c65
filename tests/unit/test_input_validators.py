"""The operator-input rules (xcon.inputs) and the name checks the plan makes before any write."""

from __future__ import annotations

import os

import pytest

from test_diagnose import Topology, connector
from test_plan import planned
from xcon import inputs
from xcon import plan


@pytest.mark.parametrize("name, value", [
    ("xcon_verify_timeout_minutes", "abc"), ("xcon_verify_timeout_minutes", "-1"), ("xcon_verify_timeout_minutes", "0"),
    ("xcon_verify_timeout_minutes", "1.5"), ("xcon_verify_timeout_minutes", True), ("xcon_verify_timeout_minutes", 10081),
    ("xcon_allow_mta_restart", "maybe"), ("xcon_allow_mta_restart", 2), ("xcon_transparency_off_acknowledged", "ok"),
    ("xcon_firewall_change_confirmed", "sure"), ("xcon_preview_on_servers", []),
    ("xcon_evidence_window_minutes", "-5"), ("xcon_evidence_window_minutes", "abc"), ("xcon_evidence_window_minutes", 0),
    ("xcon_queue_threshold", "-1"), ("xcon_queue_threshold", "ten"),
    ("xcon_workaround", "reverse"), ("xcon_workaround", "AUTO"), ("xcon_workaround", True),
    ("xcon_stack_address_type", "fqdn"), ("xcon_exchange_version", "2000"), ("xcon_exchange_version", 2003),
    ("xcon_reverse_connector_name", "X" * 65), ("xcon_reverse_connector_name", "X" * 300),
    ("xcon_reverse_connector_name", " LEADING"), ("xcon_reverse_connector_name", "A\tB"),
    ("xcon_run_id_requested", "../x"), ("xcon_run_id_requested", "/tmp/x"), ("xcon_run_id_requested", "a/b"),
    ("xcon_run_id", ".."), ("xcon_run_id", ".hidden"), ("xcon_run_id", "latest"), ("xcon_run_id", "state"),
    ("xcon_saved_run_id", "x/../../etc"), ("xcon_lock_wait_seconds", "-3"), ("xcon_lock_wait_seconds", "soon"),
])
def test_bad_values_are_refused(name, value):
    assert inputs.check(name, value), f"{name}={value!r} accepted"


@pytest.mark.parametrize("name, value", [
    ("xcon_verify_timeout_minutes", "60"), ("xcon_verify_timeout_minutes", 1), ("xcon_verify_timeout_minutes", " 30 "),
    ("xcon_allow_mta_restart", "false"), ("xcon_allow_mta_restart", "yes"), ("xcon_allow_mta_restart", False),
    ("xcon_allow_mta_restart", "True"), ("xcon_evidence_window_minutes", "120"), ("xcon_queue_threshold", "0"),
    ("xcon_workaround", "none"), ("xcon_stack_address_type", "hostname"), ("xcon_exchange_version", 5.5),
    ("xcon_exchange_version", 4.0), ("xcon_exchange_version", "5.0"), ("xcon_reverse_connector_name", ""), ("xcon_reverse_connector_name", "X" * 64),
    ("xcon_run_id_requested", ""), ("xcon_run_id", "20260105T090000Z-abc123"), ("xcon_workaround", None),
])
def test_good_values_pass(name, value):
    assert inputs.check(name, value) is None


def test_directories_must_be_writable_directories(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    assert "not a directory" in inputs.check("xcon_report_dir", str(afile))
    assert "not a directory" in inputs.check("xcon_report_dir", str(afile / "below"))
    assert inputs.check("xcon_report_dir", str(tmp_path / "new" / "deeper")) is None
    assert inputs.check("xcon_state_dir", "relative", root=str(tmp_path)) is None
    assert "not a directory" in inputs.check("xcon_state_dir", "file/state", root=str(tmp_path))
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "not writable" in inputs.check("xcon_report_dir", str(locked))


def test_one_message_per_variable_and_value_names_the_hosts_and_an_example():
    messages = inputs.validate({
        "localhost": {"xcon_verify_timeout_minutes": "abc", "xcon_workaround": "auto"},
        "EXIN": {"xcon_verify_timeout_minutes": "abc", "xcon_evidence_window_minutes": "-5"},
        "EXOUT": {"xcon_verify_timeout_minutes": "abc", "xcon_run_dir": "/etc"},
    })
    assert len(messages) == 3, messages
    timeout = next(m for m in messages if m.startswith("xcon_verify_timeout_minutes="))
    assert "'abc'" in timeout and "every host" in timeout and "-e xcon_verify_timeout_minutes=60" in timeout
    window = next(m for m in messages if m.startswith("xcon_evidence_window_minutes="))
    assert "EXIN" in window and "EXOUT" not in window and "out of range" in window
    assert any(m.startswith("xcon_run_dir=") and "do not set it" in m for m in messages)


# -- names against the directory and the existing objects (plan time, before any write) ----------
def test_reverse_name_equal_to_the_primary_in_any_case_is_refused():
    for name in ("TO-OUTSIDE", "to-outside", "To-Outside"):
        with pytest.raises(plan.PlanError, match="already the name of connector 'TO-OUTSIDE'"):
            planned(Topology.kb(), "reverse_connector", {"reverse_connector_name": name})


def test_reverse_name_equal_to_any_other_connector_is_refused():
    topo = Topology.kb()
    topo.extra_in = [connector("TO-ELSEWHERE", "EXIN", "INSIDE", "EXOTHER", "10.9.9.9")]
    with pytest.raises(plan.PlanError, match="TO-ELSEWHERE"):
        planned(topo, "reverse_connector", {"reverse_connector_name": "to-elsewhere"})


def test_reverse_name_of_the_existing_reverse_connector_repairs_it():
    topo = Topology.kb()
    topo.extra_in = [connector("MY-REVERSE", "EXIN", "INSIDE", "EXOUT", "10.1.1.1", schedule="remote", cost=99)]
    changes = planned(topo, "reverse_connector", {"reverse_connector_name": "my-reverse"})
    assert [(c["action"], c["object"]) for c in changes] == [("modify", "MY-REVERSE")]


def test_reverse_name_over_the_directory_limit_is_refused_also_when_derived():
    with pytest.raises(plan.PlanError, match="65 characters"):
        planned(Topology.kb(), "reverse_connector", {"reverse_connector_name": "R" * 65})
    topo = Topology.kb()
    topo.in_conn["name"] = "N" * 60  # <name>-REVERSE: 68 characters
    with pytest.raises(plan.PlanError, match="default reverse connector name"):
        planned(topo, "reverse_connector")


def test_stack_address_longer_than_the_directory_stores_is_refused():
    topo = Topology.kb()
    long_fqdn = "exout." + "sub." * 12 + "contoso.com"
    original = topo.servers

    def servers():
        found = original()
        found["EXOUT"]["fqdn"] = long_fqdn
        return found

    topo.servers = servers
    with pytest.raises(plan.PlanError, match="xcon_stack_address_type=ip"):
        planned(topo, "reverse_connector", {"address_type": "hostname"})


# -- issue 22, case 8: variables nobody reads, names the directory forbids, one form for names ---------
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_misspelt_variable_is_named_with_the_closest_known_one():
    known = inputs.known_names(ROOT)
    names = {"localhost": ["xcon_allow_mta_restarts", "xcon_workaround", "xcon_run_workaround"], "EXIN": ["xcon_server_adress"]}
    messages = inputs.unknown_variables(names, known)
    assert len(messages) == 2, messages
    assert "xcon_allow_mta_restarts (seen by localhost)" in messages[0] and "did you mean xcon_allow_mta_restart?" in messages[0]
    assert "did you mean xcon_server_address?" in messages[1]


def test_every_variable_the_toolkit_reads_is_known():
    import re
    known = inputs.known_names(ROOT)
    read = set()
    for folder in ("module_utils/xcon", "module_utils/xcon/actions", "tests/lab/xconlab_lab"):
        for name in os.listdir(os.path.join(ROOT, folder)):
            if name.endswith(".py"):
                with open(os.path.join(ROOT, folder, name), encoding="utf-8") as handle:
                    read |= set(re.findall(r"\"(xcon_[a-z0-9_]*[a-z0-9])\"", handle.read()))
    groups = {"xcon_exchange", "xcon_firewalls", "xcon_management_hosts", "xcon_targets"}
    assert read - known - groups == set()


@pytest.mark.parametrize("name", ["a/b", "/x", "x/"])
def test_a_connector_name_with_a_slash_is_refused(name):
    assert "contains '/'" in inputs.check("xcon_reverse_connector_name", name)


def test_an_organisation_name_with_dn_special_characters_is_allowed_but_not_slash_or_equals():
    assert inputs.check("xcon_organization", "Contoso, Ltd; #1+2") is None
    assert "'='" in inputs.check("xcon_organization", "o=X")


def test_two_hosts_with_one_address_are_named():
    messages = inputs.duplicate_addresses({"EXIN": "192.0.2.10", "EXOUT": " 192.0.2.10", "EXTRA": "Exin.example.", "X2": "exin.example"})
    assert len(messages) == 2, messages
    assert "given to 2 Exchange hosts (EXIN, EXOUT)" in " ".join(messages)
    assert "(EXTRA, X2)" in " ".join(messages)
    assert inputs.duplicate_addresses({"EXIN": "192.0.2.10", "EXOUT": "198.51.100.10", "X": None, "Y": None}) == []


def test_the_organisation_is_compared_unescaped_with_the_naming_context():
    from xcon import gather
    from xcon.ops import OpResult

    def root(*contexts):
        return OpResult(id="directory", ok=True, data={"namingContexts": list(contexts)})
    assert gather.directory_problem(root(r"o=Contoso\, Ltd\; \#1\+2"), "Contoso, Ltd; #1+2") is None
    assert gather.directory_problem(root(r"o=contoso\,  ltd"), "Contoso, Ltd") is None
    assert "no naming context" in gather.directory_problem(root("o=Contoso"), "Contoso, Ltd")
    assert "no naming context" in gather.directory_problem(root(r"o=Contoso\, Ltd"), "Contoso")
