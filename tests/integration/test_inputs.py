"""Operator input and module errors, through the real playbook against the lab: a bad value stops
the run before the first write with a message that names the variable, the host and what to do;
a module that fails says why (never a crash of the plugin itself)."""

from __future__ import annotations

import json
import os
import re
import socket

import yaml

from conftest import directory_and_firewalls


def _output(run):
    return run.stdout + "\n" + run.stderr


def _flat(run):
    return " ".join(_output(run).split())


# -- module errors surface ---------------------------------------------------------------------------
def test_report_dir_that_is_a_file_is_named_with_what_to_do(lab, tmp_path):
    lab.up("kb.yml")
    afile = tmp_path / "not-a-directory"
    afile.write_text("x")
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook("--check", extra={"xcon_report_dir": str(afile)})
    text = _flat(run)
    assert run.returncode != 0, text[-4000:]
    assert "PlayContext" not in text and "Traceback" not in text, text[-4000:]
    assert str(afile) in text and re.search(r"not a directory", text, re.I), text[-4000:]
    assert "xcon_report_dir" in text and "Nothing was read or changed" in text, text[-4000:]
    assert directory_and_firewalls(lab.snapshot()) == before


def _recap(run):
    """{host: {"ok": n, "failed": n, ...}} from Ansible's PLAY RECAP."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", run.stdout, re.M)}


def _commands(lab):
    return {host: stats["commands"] for host, stats in json.loads(lab.ctl("stats").stdout).items()}


def _write_yaml(path, data):
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)


# -- every bad operator value stops the run before any host is contacted -----------------------------
BAD_VALUES = [
    ("xcon_verify_timeout_minutes", "abc", "not a whole number"),
    ("xcon_verify_timeout_minutes", "-1", "out of range"),
    ("xcon_allow_mta_restart", "maybe", "not a boolean"),
    ("xcon_evidence_window_minutes", "-5", "out of range"),
    ("xcon_evidence_window_minutes", "abc", "not a whole number"),
    ("xcon_queue_threshold", "-1", "out of range"),
    ("xcon_workaround", "reverse", "not one of"),
    ("xcon_preview_on_servers", "sometimes", "not a boolean"),
    ("xcon_stack_address_type", "fqdn", "not one of"),
    ("xcon_transparency_off_acknowledged", "maybe", "not a boolean"),
    ("xcon_firewall_change_confirmed", "perhaps", "not a boolean"),
    ("xcon_reverse_connector_name", "R" * 300, "at most 64"),
    ("xcon_run_id_requested", "../escaped", "no '..'"),
    ("xcon_run_id", "/tmp/xcon-escaped", "no absolute path"),
    ("xcon_run_dir", "/tmp/xcon-escaped", "do not set it"),
]


def test_bad_operator_values_stop_the_run_before_any_host_is_contacted(lab, tmp_path):
    lab.up("kb.yml")
    before = directory_and_firewalls(lab.snapshot())
    commands = _commands(lab)
    # every bad value at once: one message each, in one refusal (two runs keep the test short)
    # (a variable listed twice: its first value in the real run, its second under --check)
    first, last = {}, {}
    for name, value, why in BAD_VALUES:
        first.setdefault(name, (value, why))
        last[name] = (value, why)
    for mode, cases in (((), first), (("--check",), last)):  # check mode refuses what the real run refuses
        run = lab.playbook(*mode, extra={name: value for name, (value, _) in cases.items()})
        text = _flat(run)
        assert run.returncode != 0, (mode, text[-3000:])
        assert f"{len(cases)} operator value(s) are invalid" in text and "Nothing was read or changed" in text, text[-3000:]
        for name, (value, why) in cases.items():
            # Ansible's YAML output doubles the quotes around the value
            found = re.search(rf"\b{name}='+{re.escape(value[:60])}", text)
            assert found, (name, mode, text[-4000:])
            message = text[found.start():found.start() + 600]
            assert "(seen by every host)" in message and why in message.split(" (e.g. -e ")[0], (name, mode, message)
        assert "PlayContext" not in text and "Traceback" not in text
    assert _commands(lab) == commands, "a host was contacted although an operator value was invalid"
    assert directory_and_firewalls(lab.snapshot()) == before
    assert not os.path.exists("/tmp/xcon-escaped") and not os.path.exists(os.path.join(str(tmp_path), "escaped"))
    assert not os.path.exists(lab.reports) or os.listdir(lab.reports) == [], os.listdir(lab.reports)


def test_bad_role_variables_of_the_write_path_stop_the_run_before_any_host_is_contacted(lab):
    # The write path's roles run no argument-validation task (a task per host on a fleet): their
    # variables are checked by xcon_validate with each role's own argument spec, before the audit.
    # (Before, xcon_mta_restart_allowed=maybe was refused only after every connector change.)
    lab.up("kb.yml")
    before = directory_and_firewalls(lab.snapshot())
    commands = _commands(lab)
    run = lab.playbook(extra={"xcon_mta_restart_allowed": "maybe", "xcon_change_exchange_version": "6.0"})
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    assert "2 operator value(s) are invalid" in text and "Nothing was read or changed" in text, text[-3000:]
    assert re.search(r"xcon_mta_restart_allowed='+maybe'+ \(seen by every host\): .*not a valid boolean", text), text[-3000:]
    assert re.search(r"xcon_change_exchange_version='+6\.0'+ \(seen by every host\): value of xcon_change_exchange_version "
                     r"must be one of: 4\.0, 5\.0, 5\.5", text), text[-3000:]
    assert "Traceback" not in text
    assert _commands(lab) == commands, "a host was contacted although a role variable was invalid"
    assert directory_and_firewalls(lab.snapshot()) == before


# -- names against the existing objects: refused before any write, predicted by --check ----------
def test_reverse_name_equal_to_the_primary_in_another_case_is_refused_before_any_write(lab):
    lab.up("kb.yml")
    lab.advance(30)
    before = directory_and_firewalls(lab.snapshot())
    extra = {"xcon_workaround": "reverse_connector", "xcon_reverse_connector_name": "to-outside"}
    check = lab.playbook("--check", extra=extra)
    text = _flat(check)
    assert check.returncode != 0, text[-3000:]
    assert "a real run would refuse before any change" in text and "already the name of connector 'TO-OUTSIDE' on EXIN" in text, text[-3000:]
    run = lab.playbook(extra=extra)
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    assert "Nothing was changed" in text and "already the name of connector 'TO-OUTSIDE' on EXIN" in text, text[-3000:]
    assert directory_and_firewalls(lab.snapshot()) == before, "the primary connector was changed"


# -- exit status and summary tell the truth --------------------------------------------------------
def test_no_host_readable_exits_non_zero_with_worst_status_unknown(lab):
    lab.up("kb.yml")
    lab.ctl("fault", "EXIN", "refuse-credentials")
    lab.ctl("fault", "EXOUT", "refuse-credentials")
    run = lab.playbook("--check")
    assert run.returncode != 0, _output(run)[-3000:]
    recap = _recap(run)
    assert recap["EXIN"]["failed"] == 1 and recap["EXOUT"]["failed"] == 1, recap
    report = lab.report()
    assert report["summary"]["worst_status"] == "unknown", report["summary"]
    assert report["summary"]["hosts_scanned"] == 0 and report["summary"]["hosts_failed"] == 2
    assert "2 Exchange host(s) could not be read" in _flat(run)


def test_peer_missing_from_the_inventory_is_not_a_healthy_site(lab):
    lab.up("kb.yml")
    inventory = yaml.safe_load(open(lab.inventory, encoding="utf-8"))
    del inventory["all"]["children"]["xcon_exchange"]["hosts"]["EXOUT"]
    _write_yaml(lab.inventory, inventory)
    # (one run for two cases: certificate validation off gives a warning naming the hosts)
    run = lab.playbook("--check", extra={"ansible_winrm_server_cert_validation": "ignore"})
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    report = lab.report()
    assert report["coverage"]["hosts_scanned"] == ["EXIN"] and report["summary"]["hosts_scanned"] == 1, report["coverage"]
    assert report["summary"]["worst_status"] == "unknown" and report["links"] == []
    assert "hosts scanned 1, failed 0" in text
    assert "no X.400 link was found although 1 host(s) were read (EXIN)" in text and "TO-OUTSIDE -> EXOUT" in text, text[-3000:]
    assert re.search(r"\[WARNING\]: WinRM certificate validation is OFF \(ansible_winrm_server_cert_validation=ignore\) for EXIN", text), text[:3000]


# -- a module's own failure: the real message, the host, the operation, what to do ------------------
MODULE_ERRORS = """
- name: Module errors
  hosts: EXIN
  gather_facts: false
  tasks:
    - name: A directory constraint violation on create (a display name over the directory's 256)
      xcon_connector:
        name: TO-OUTSIDE-REVERSE
        display_name: "{{ 'D' * 300 }}"
        clone_from: TO-OUTSIDE
        schedule: remote
        stack_address: 198.51.100.10
        address_type: ip
        cost: 99
      ignore_errors: true
    - name: A name the directory would refuse, refused in check mode too
      xcon_connector:
        name: "{{ 'R' * 300 }}"
        clone_from: TO-OUTSIDE
      check_mode: true
      register: xcon_test_long_name
      ignore_errors: true
    - name: Show it
      ansible.builtin.debug:
        msg: "CHECK-MODE-LONG-NAME {{ xcon_test_long_name.msg }}"
- name: Refused credentials and an unreachable host
  hosts: EXOUT:DEAD
  gather_facts: false
  tasks:
    - name: Read the connectors
      xcon_connector_info: {}
      ignore_errors: true
"""


def test_module_errors_name_the_cause_the_host_the_operation_and_what_to_do(lab, tmp_path):
    lab.up("kb.yml")
    inventory = yaml.safe_load(open(lab.inventory, encoding="utf-8"))
    hosts = inventory["all"]["children"]["xcon_exchange"]["hosts"]
    dead = dict(hosts["EXOUT"], ansible_port=_closed_port(), xcon_management_host="DEAD")
    hosts["DEAD"] = dead
    _write_yaml(lab.inventory, inventory)
    lab.ctl("fault", "EXOUT", "refuse-credentials")
    playbook = tmp_path / "module-errors.yml"
    playbook.write_text(MODULE_ERRORS)
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook(playbook=str(playbook))
    text = _flat(run)
    assert "PlayContext" not in text and "Traceback" not in text, text[-3000:]
    fatal = {}
    # the console callback's failure line: fatal: [host] task (module): reason (callback_plugins/xcon.py)
    for host, message in re.findall(r"fatal: \[(\w+)\] (.*?)\.\.\.ignoring", text):
        fatal.setdefault(host, message)
    assert set(fatal) == {"EXIN", "EXOUT", "DEAD"}, text[-4000:]
    assert re.search(r"xcon_connector \(EXIN\): .*ConstraintViolation.*dir_create.*300 characters, at most 256.*What to do", fatal["EXIN"]), fatal["EXIN"]
    assert re.search(r"CHECK-MODE-LONG-NAME xcon_connector \(EXIN\): cannot create '+R+'+ on EXIN: the connector name has 300 characters; "
                     r"the directory accepts at most 64", text), text[-4000:]
    assert re.search(r"xcon_connector_info \(EXOUT\): .*credentials.*rejected.*What to do: check the account", fatal["EXOUT"]), fatal["EXOUT"]
    assert re.search(r"xcon_connector_info \(DEAD\): .*cannot reach the host.*What to do: check that the host is up", fatal["DEAD"]), fatal["DEAD"]
    assert directory_and_firewalls(lab.snapshot()) == before


def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_analysis_of_a_missing_run_is_refused_and_replaces_nothing(lab):
    lab.up("kb.yml")
    run = lab.playbook(playbook="playbooks/analyze.yml", extra={"xcon_saved_run_id": "20260105T090000Z-000000"})
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    assert "xcon_saved_run_id='20260105T090000Z-000000': no saved run there" in text, text[-3000:]
    assert not os.path.exists(os.path.join(lab.reports, "latest")), os.listdir(lab.reports)
