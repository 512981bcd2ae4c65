"""Issue 22, cases 3 and 8: inputs a hostile tester gave, checked before the first read or write,
through the real playbook against the lab.  Each test failed on the code before the fix: the run
went on, restarted both MTAs, repointed a connector at the wrong server or created a connector the
directory's name rules forbid, or refused an organisation whose name needs DN escaping."""

from __future__ import annotations

import json
import os

import yaml

from conftest import TOPOLOGIES, directory_and_firewalls


def _flat(run):
    return " ".join((run.stdout + "\n" + run.stderr).split())


def _commands(lab):
    return {host: stats["commands"] for host, stats in json.loads(lab.ctl("stats").stdout).items()}


def _untouched(lab, before, commands):
    assert _commands(lab) == commands, "a host was contacted although an input was refused"
    assert directory_and_firewalls(lab.snapshot()) == before


def test_misspelt_variable_is_refused_with_the_closest_name_before_any_host_is_read(lab):
    lab.up("kb.yml")
    lab.advance(30)
    before, commands = directory_and_firewalls(lab.snapshot()), _commands(lab)
    run = lab.playbook(extra={"xcon_allow_mta_restarts": "false"})
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    assert "xcon_allow_mta_restarts (seen by every host): no such fix-xcon variable" in text, text[-3000:]
    assert "did you mean xcon_allow_mta_restart?" in text, text[-3000:]
    _untouched(lab, before, commands)
    assert all(s["service"]["restarts"] == 0 for s in lab.snapshot()["servers"].values())


def test_two_exchange_hosts_with_one_address_are_refused_before_any_host_is_read(lab):
    lab.up("kb.yml")
    lab.advance(30)
    def same_address(inventory):
        hosts = inventory["all"]["children"]["xcon_exchange"]["hosts"]
        hosts["EXOUT"]["xcon_server_address"] = hosts["EXIN"]["xcon_server_address"]
    hosts = lab.edit_inventory(same_address)["all"]["children"]["xcon_exchange"]["hosts"]
    before, commands = directory_and_firewalls(lab.snapshot()), _commands(lab)
    run = lab.playbook()
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    assert f"xcon_server_address='{hosts['EXIN']['xcon_server_address']}' is given to 2 Exchange hosts (EXIN, EXOUT)" in text, text[-3000:]
    _untouched(lab, before, commands)


def test_reverse_connector_name_with_a_slash_is_refused_before_any_host_is_read(lab):
    lab.up("kb.yml")
    lab.advance(30)
    before, commands = directory_and_firewalls(lab.snapshot()), _commands(lab)
    run = lab.playbook(extra={"xcon_workaround": "reverse_connector", "xcon_reverse_connector_name": "a/b"})
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    assert "xcon_reverse_connector_name='a/b'" in text and "contains '/'" in text, text[-3000:]
    _untouched(lab, before, commands)


def test_organisation_with_dn_special_characters_is_read_and_diagnosed(lab, tmp_path):
    with open(os.path.join(TOPOLOGIES, "kb.yml"), encoding="utf-8") as handle:
        topology = yaml.safe_load(handle)
    topology["organization"] = "Contoso, Ltd; #1+2"
    path = tmp_path / "org.yml"
    path.write_text(yaml.safe_dump(topology), encoding="utf-8")
    lab.up(str(path))
    lab.advance(30)
    run = lab.playbook("--check")
    text = _flat(run)
    report = lab.report()
    assert report["coverage"]["hosts_failed"] == [], report["coverage"]
    assert "XCON-WRONG-DIRECTORY" not in text, text[-3000:]
    codes = {f["code"] for link in report["links"] for f in link["findings"]}
    assert "XCON-TRANSPARENCY-REFUSAL" in codes, codes
