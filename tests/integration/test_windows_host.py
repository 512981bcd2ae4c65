"""First contact with a real Windows host (issue 18): the on-host scripts against a lab that plays
Windows' limits and failures, not only the happy path. Each test starts from a stock topology,
changes only the Windows behaviour it is about, and runs the playbook as an operator would."""

from __future__ import annotations

from test_real_world import topology


def _fix(lab, path, workaround="reverse_connector", minutes=30, **extra):
    lab.up(path)
    lab.advance(minutes)
    run = lab.playbook(extra=dict(extra, xcon_workaround=workaround))
    (link,) = lab.report()["links"]
    return link, run


# -- defect 1: a compensating MTA restart ----------------------------------------------------------
def test_mta_restart_with_a_slow_dependent_ends_with_every_service_running(lab, tmp_path):
    # EXIN's MTA takes 45 s to stop and an Internet Mail Service that depends on it (Q244035) takes
    # 45 s too. ServiceController.Stop() would stop the IMS itself and give it 30 s (then throw,
    # leaving it stopped and the MTA running, the change not activated); the restart stops the IMS
    # and the MTA within the op's own timeout and starts both again.
    def change(data):
        data["servers"]["EXIN"].update(mta_stop_seconds=45, services=[
            {"name": "MSExchangeIMC", "depends_on": ["MSExchangeMTA"], "stop_seconds": 45, "running": True},
            {"name": "MSExchangeFAX", "depends_on": ["MSExchangeMTA"], "stop_seconds": 2, "running": False}])

    link, run = _fix(lab, topology(tmp_path, "kb.yml", change))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert link["verification"]["state"] == "passed", link["verification"]
    services = lab.snapshot()["servers"]["EXIN"]["service"]
    assert services == {"MSExchangeMTA": "Running", "MSExchangeIMC": "Running", "MSExchangeFAX": "Stopped",
                        "restarts": 1}, services
    restart = link["mta_restarts"]["EXIN"]
    assert restart["restarted"] and restart["dependents"] == ["MSExchangeIMC"], restart
    assert restart["started"] == ["MSExchangeMTA", "MSExchangeIMC"] and restart["not_running"] == []
    assert "MTA restart on EXIN: MSExchangeMTA restarted, dependent service(s) started again: MSExchangeIMC" \
        in " ".join(run.stdout.split())
    import os

    with open(os.path.join(lab.reports, "latest", "report.html"), encoding="utf-8") as handle:
        assert "MTA restart on EXIN: MSExchangeMTA restarted; dependent service(s) started again: MSExchangeIMC." \
            in handle.read()


# -- defect 4: a paged directory search --------------------------------------------------------------
def _crowded_site(data):
    # Site INSIDE holds 150 connectors: EXHUB's 149 (a server of the site that fix-xcon does not
    # manage; listed first, so they come first in the directory) and EXIN's TO-OUTSIDE. The
    # directory answers at most 100 entries to a search it does not page (ldap_size_limit).
    hub = {"site": "INSIDE", "address": "192.0.2.11", "fqdn": "exhub.inside.contoso.example", "exchange": "5.5",
           "winrm": None, "ldap_size_limit": 100,
           "connectors": [{"name": f"TO-BRANCH-{i:03d}", "remote_mta": "EXOUT", "stack_address": "198.51.100.1",
                           "schedule": "never"} for i in range(149)]}
    data["servers"] = dict({"EXHUB": hub}, **data["servers"])
    for server in data["servers"].values():
        server["ldap_size_limit"] = 100


def _unmanaged(lab, *names):
    import yaml

    with open(lab.inventory, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    for name in names:
        inventory["all"]["children"]["xcon_exchange"]["hosts"].pop(name)
    with open(lab.inventory, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)


def _inside_connectors(snapshot):
    return [e["dn"] for e in snapshot["servers"]["EXIN"]["directory"] if "RFC1006-X400-Link" in e["objectClass"]]


def test_a_site_of_150_connectors_under_a_cap_of_100_is_read_whole_and_fixed_once(lab, tmp_path):
    import glob
    import json

    lab.up(topology(tmp_path, "kb.yml", _crowded_site))
    _unmanaged(lab, "EXHUB")
    lab.advance(30)
    assert len(_inside_connectors(lab.snapshot())) == 150
    run = lab.playbook(extra={"xcon_workaround": "reverse_connector"})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    (link,) = lab.report()["links"]
    assert link["inside"]["connector"] == "TO-OUTSIDE" and "XCON-TRANSPARENCY-REFUSAL" in {f["code"] for f in link["findings"]}
    # the audit read all 150 connectors of the site (one command, paged)
    (saved,) = glob.glob(str(tmp_path / "state" / "*" / "raw" / "EXIN.json")) or glob.glob(str(tmp_path / "**" / "raw" / "EXIN.json"), recursive=True)[:1]
    with open(saved, encoding="utf-8") as handle:
        assert len(json.load(handle)["raw"]) == 150
    # fixed, with one reverse connector and no duplicate of anything
    assert link["verification"]["state"] == "passed", link["verification"]
    after = _inside_connectors(lab.snapshot())
    assert len(after) == 151 and len(set(d.lower() for d in after)) == 151
    created = [c for c in link["changes"] if c["action"] == "create"]
    assert len(created) == 1 and created[0]["applied"]


# -- defect 3: octet strings travel typed ------------------------------------------------------------
import ipaddress  # noqa: E402

import pytest  # noqa: E402


def _no_schema(data):
    # ADSI on these hosts cannot read the directory schema (LDAP://SERVER/schema/ATTR fails): a string
    # written to an octet-string attribute goes out as text and the directory stores its bytes.
    for server in data["servers"].values():
        server["adsi_schema"] = "unavailable"


@pytest.mark.parametrize("workaround, extra", [
    ("reverse_connector", {}),
    ("firewall_tunnel", {}),
    ("transparency_off", {"xcon_transparency_off_acknowledged": "true"}),
])
def test_without_the_directory_schema_each_workaround_writes_the_right_bytes(lab, tmp_path, workaround, extra):
    link, run = _fix(lab, topology(tmp_path, "kb.yml", _no_schema), workaround, **extra)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert link["verification"]["state"] == "passed", link["verification"]
    for name, server in lab.snapshot()["servers"].items():
        for entry in server["directory"]:
            if "RFC1006-X400-Link" not in entry["objectClass"]:
                continue
            attributes = entry["attributes"]
            # the snapshot shows N-Address as its text: an address, never the hex of one
            ipaddress.ip_address(attributes["N-Address"])
            assert len(bytes.fromhex(attributes["Activation-Schedule"])) == 84, (name, entry["dn"])
