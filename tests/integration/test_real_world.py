"""Facts checked against public sources (issue 11, items 4-10), each proven against the lab.

Each test starts from a stock topology, changes only what the fact is about, and runs the audit
(``fix-xcon.yml --check``) or the fix through ansible-playbook, as an operator would.
"""

from __future__ import annotations

import json
import os

import yaml

from conftest import TOPOLOGIES


def _codes(link):
    return {f["code"]: f for f in link["findings"]}


def topology(tmp_path, base, change):
    """A copy of tests/lab/topologies/<base> with `change(data)` applied; returns its path."""
    with open(os.path.join(TOPOLOGIES, base), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    change(data)
    path = tmp_path / f"topology-{base}"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


def audit(lab, path, minutes=60):
    lab.up(path)
    lab.advance(minutes)
    run = lab.playbook("--check")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    (link,) = lab.report()["links"]
    return link, run


# -- item 10: the Activation-Schedule layout is documented -----------------------------------------
def test_selected_schedule_times_are_decoded_in_gmt(lab, tmp_path):
    # PR_EMS_AB_ACTIVATION_SCHEDULE: 84 bytes, one byte per two hours, high bit first, from Sunday
    # 00:00 GMT. Monday 08:00-10:00 is byte (24 + 8) / 2 = 16 of the week; Wednesday 22:15-22:30 is
    # the second quarter hour (bit 0x40) of byte (72 + 22) / 2 = 47.
    grid = bytearray(84)
    grid[16] = 0xFF
    grid[47] = 0x40

    def change(data):
        connector = data["servers"]["EXIN"]["connectors"][0]
        connector["schedule"] = "selected"
        connector["schedule_grid"] = grid.hex()

    link, _run = audit(lab, topology(tmp_path, "healthy.yml", change))
    finding = _codes(link)["XCON-SCHEDULE-NOT-ALWAYS"]
    assert finding["evidence"]["schedule_times"] == [
        {"day": "Monday", "start": "08:00", "end": "10:00", "text": "Monday 08:00-10:00 GMT"},
        {"day": "Wednesday", "start": "22:15", "end": "22:30", "text": "Wednesday 22:15-22:30 GMT"},
    ]
    assert "Monday 08:00-10:00 GMT" in finding["message"]


def _kb_is_diagnosed(link):
    codes = _codes(link)
    assert link["status"] == "error", link["findings"]
    assert codes["XCON-TRANSPARENCY-REFUSAL"]["severity"] == "error", link["findings"]
    return codes


# -- item 5: a per-server LDAP port, and a check that the endpoint is the 5.5 directory -------------
def _domain_controller(data):
    # Exchange 5.5 on a Windows 2000 domain controller: Active Directory holds 389, the Exchange
    # directory was moved to 390 (Q224447, Q250989).
    data["servers"]["EXIN"].update(domain_controller=True, ldap_port=390)


def test_moved_ldap_port_from_the_inventory_reads_the_exchange_directory(lab, tmp_path):
    link, _run = audit(lab, topology(tmp_path, "kb.yml", _domain_controller))
    _kb_is_diagnosed(link)
    assert "XCON-WRONG-DIRECTORY" not in _codes(link)


def test_active_directory_on_389_is_named_never_no_connectors(lab, tmp_path):
    lab.up(topology(tmp_path, "kb.yml", _domain_controller))
    # The operator did not know the port moved: the inventory has no xcon_ldap_port for EXIN.
    with open(lab.inventory, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    exin = inventory["all"]["children"]["xcon_exchange"]["hosts"]["EXIN"]
    assert exin.pop("xcon_ldap_port") == 390
    with open(lab.inventory, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    lab.advance(60)
    before = lab.snapshot()["servers"]["EXIN"]["directory"]
    run = lab.playbook("--check")
    # a host not read: non-zero even under --check (contract), the report written first
    assert run.returncode != 0 and "XCON-WRONG-DIRECTORY" in run.stdout, run.stdout[-4000:]
    (link,) = lab.report()["links"]
    codes = _codes(link)
    assert link["status"] == "unknown" and link["changes"] == []
    wrong = codes["XCON-WRONG-DIRECTORY"]
    assert wrong["severity"] == "unknown" and wrong["host"] == "EXIN"
    assert "Active Directory" in wrong["message"] and "DC=" in wrong["message"] and "xcon_ldap_port" in wrong["message"]
    assert "XCON-CONNECTOR-MISSING" not in codes  # never "no connectors found"
    assert lab.snapshot()["servers"]["EXIN"]["directory"] == before


def test_wrong_organisation_is_named(lab, tmp_path):
    lab.up(os.path.join(TOPOLOGIES, "healthy.yml"))
    lab.advance(30)
    run = lab.playbook("--check", extra={"xcon_organization": "FABRIKAM"})
    assert run.returncode != 0, run.stdout[-4000:]                   # no host read, no link found
    report = lab.report()
    # Neither directory is FABRIKAM's: no connector is read, so no link; both servers are named
    # as not scanned, with the reason (never "no connectors found").
    assert report["links"] == []
    failed = {h["host"]: h for h in report["coverage"]["hosts_failed"]}
    assert set(failed) == {"EXIN", "EXOUT"}
    assert {h["code"] for h in failed.values()} == {"XCON-WRONG-DIRECTORY"}
    assert all("no naming context o=FABRIKAM" in h["reason"] for h in failed.values())


# -- item 6: the MTA's TCP port from the registry -------------------------------------------------
def test_mta_port_from_the_registry_drives_diagnosis_and_firewall_records(lab, tmp_path):
    def change(data):
        for server in data["servers"].values():
            server["mta_port"] = 1102          # "RFC1006 Port Number" on both MTAs (Q161931)
        for passer in data["firewalls"]["FW1"]["passers"]:
            passer["port"] = 1102

    link, _run = audit(lab, topology(tmp_path, "kb.yml", change), minutes=60)
    _kb_is_diagnosed(link)
    steps = [s for change in link["changes"] for s in change.get("firewall_steps") or []]
    assert steps and {s["port"] for s in steps if "port" in s} == {1102}, link["changes"]
    assert any("1102" in (change.get("operator_text") or change.get("description") or json.dumps(change))
               for change in link["changes"] if change.get("firewall_steps"))


def test_mta_ports_that_differ_are_an_error(lab, tmp_path):
    def change(data):
        data["servers"]["EXOUT"]["mta_port"] = 1102

    link, _run = audit(lab, topology(tmp_path, "healthy.yml", change), minutes=30)
    mismatch = _codes(link)["XCON-MTA-PORT-MISMATCH"]
    assert mismatch["severity"] == "error" and mismatch["evidence"]["mta_ports"] == {"EXIN": 102, "EXOUT": 1102}


# -- item 9: host-name Stack addresses resolved on the Windows host -------------------------------
def test_host_name_stack_addresses_are_resolved_on_the_windows_host(lab, tmp_path):
    def change(data):
        data["firewalls"]["FW1"]["interface_names"] = {"internal": "fw1-in.inside.contoso.example",
                                                       "external": "fw1.outside.contoso.example"}
        for server, name in (("EXIN", "fw1-in.inside.contoso.example"), ("EXOUT", "fw1.outside.contoso.example")):
            connector = data["servers"][server]["connectors"][0]
            connector.update(stack_address=name, address_type="hostname")

    link, _run = audit(lab, topology(tmp_path, "kb.yml", change))
    codes = _kb_is_diagnosed(link)  # the names resolve (in the lab's DNS) to the firewall's interfaces
    assert "XCON-STACK-ADDRESS" not in codes
    with open(os.path.join(lab.reports, "latest", "report.json"), encoding="utf-8") as handle:
        text = handle.read()
    assert "fw1-in.inside.contoso.example" in text


# -- item 7: Windows PowerShell 2.0 on .NET 2.0 ---------------------------------------------------
def test_host_without_dotnet35_is_audited(lab, tmp_path):
    def change(data):
        for server in data["servers"].values():
            server["winrm"]["dotnet35"] = False

    link, _run = audit(lab, topology(tmp_path, "kb.yml", change))
    _kb_is_diagnosed(link)


# -- item 8: Basic credentials in the host's ANSI code page ---------------------------------------
def test_western_non_ascii_password_over_basic(lab, tmp_path):
    def change(data):
        for server in data["servers"].values():
            server["winrm"].update(auth=["basic"], password="Gr\u00fc\u00dfe-\u00e9t\u00e9!", codepage=1252)

    link, _run = audit(lab, topology(tmp_path, "healthy.yml", change), minutes=30)
    assert link["status"] == "ok", link["findings"]
