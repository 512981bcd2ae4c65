"""The lab plays Windows for the facts of issue 11 (items 4-9), written from the sources:
RootDSE of Exchange 5.5 vs Active Directory (Q224447, Q250989, MS-ADTS rootDSE), the MTA's
"RFC1006 Port Number" (Q161931, Q176466), a PowerShell 2.0 host without .NET 3.5, Basic credentials
decoded in the host's ANSI code page, host names resolved by the host's resolver."""
from __future__ import annotations

import base64
import os

import pytest
import requests
import yaml

from xconlab_lab import handler as handler_mod
from xconlab_lab.model import Lab, OpError
from xconlab_lab.wsman import EndpointConfig, WsmanServer

HERE = os.path.dirname(os.path.abspath(__file__))
TOPOLOGIES = os.path.join(HERE, "..", "lab", "topologies")
USER = "CONTOSO\\xcon"


def kb_data():
    with open(os.path.join(TOPOLOGIES, "kb.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def op(lab, endpoint, name, **params):
    params.setdefault("server", endpoint)
    return lab.execute_op(endpoint, USER, name, params)


def test_domain_controller_serves_active_directory_on_389_and_exchange_on_its_port():
    data = kb_data()
    data["servers"]["EXIN"].update(domain_controller=True, ldap_port=390)
    lab = Lab.from_dict(data)
    ad = op(lab, "EXIN", "dir_root")
    assert "1.2.840.113556.1.4.800" in ad["supportedCapabilities"] and ad["defaultNamingContext"] == "DC=inside,DC=contoso,DC=example"
    assert not any(c.lower().startswith("o=") for c in ad["namingContexts"])
    assert op(lab, "EXIN", "dir_search", base="", classes=["RFC1006-X400-Link"]) == {"entries": []}
    with pytest.raises(OpError) as info:
        op(lab, "EXIN", "dir_search", base="o=CONTOSO")
    assert info.value.category == "NoSuchObject"
    exchange = op(lab, "EXIN", "dir_root", port=390)
    assert exchange["namingContexts"] == ["o=CONTOSO"] and not exchange["supportedCapabilities"]
    assert len(op(lab, "EXIN", "dir_search", port=390, base="ou=INSIDE,o=CONTOSO", classes=["RFC1006-X400-Link"])["entries"]) == 1
    with pytest.raises(OpError) as info:                  # nothing listens on another port
        op(lab, "EXOUT", "dir_root", port=390)
    assert info.value.category == "ServerUnavailable"


def test_rfc1006_port_number_is_in_the_registry_only_when_changed():
    data = kb_data()
    data["servers"]["EXOUT"]["mta_port"] = 1102
    lab = Lab.from_dict(data)
    key = "SYSTEM\\CurrentControlSet\\Services\\MSExchangeMTA\\Parameters"
    assert op(lab, "EXIN", "reg_read", key=key, names=["RFC1006 Port Number"]) == {
        "key": key, "found": True, "values": {"RFC1006 Port Number": None}}
    assert op(lab, "EXOUT", "reg_read", key=key, names=["RFC1006 Port Number"])["values"] == {"RFC1006 Port Number": 1102}
    # Q176466: the MTAs must use the same port; EXOUT (1102) never reaches EXIN (102) and vice versa
    lab.advance(30)
    assert lab.snapshot()["servers"]["EXOUT"]["associations"]["outbound_ok"] == 0
    assert lab.snapshot()["servers"]["EXIN"]["associations"]["inbound_ok"] == 0


def test_stack_host_names_resolve_through_the_hosts_resolver():
    data = kb_data()
    data["firewalls"]["FW1"]["interface_names"] = {"internal": "fw1-in.inside.contoso.example"}
    data["servers"]["EXIN"]["connectors"][0].update(stack_address="fw1-in.inside.contoso.example", address_type="hostname")
    lab = Lab.from_dict(data)
    entry = op(lab, "EXIN", "dir_search", base="o=CONTOSO", classes=["RFC1006-X400-Link"],
               attributes=["N-Address"], resolve="N-Address")["entries"][0]
    assert entry["resolved"] == {"name": "fw1-in.inside.contoso.example", "addresses": ["192.0.2.1"], "error": None}
    data["servers"]["EXIN"]["connectors"][0]["stack_address"] = "nowhere.contoso.example"
    entry = op(Lab.from_dict(data), "EXIN", "dir_search", base="", classes=["RFC1006-X400-Link"],
               attributes=["N-Address"], resolve="N-Address")["entries"][0]
    assert entry["resolved"]["addresses"] == [] and entry["resolved"]["error"] == "No such host is known"


def test_a_runner_that_needs_dotnet35_stops_on_a_host_without_it():
    data = kb_data()
    data["servers"]["EXIN"]["winrm"]["dotnet35"] = False
    lab = Lab.from_dict(data)
    old_runner = "$s = New-Object System.Web.Script.Serialization.JavaScriptSerializer\n"
    with open(os.path.join(handler_mod.SCRIPTS_DIR, "lib_json.ps1"), encoding="ascii") as handle:
        payload = "\0\0\0\0".join([old_runner, handle.read(), '{"version": 1, "ops": []}']).encode("ascii")
    manifest = dict(handler_mod.load_manifest(), **{"runner.ps1": handler_mod.script_hash(old_runner)})
    run = handler_mod.CommandHandler(lab, manifest)._bootstrap
    out, err, rc = run("EXIN", USER, payload)
    assert rc == 1 and b"Cannot find type [System.Web.Script.Serialization.JavaScriptSerializer]" in err
    out, err, rc = run("EXOUT", USER, payload)
    assert rc == 0, err                                  # EXOUT has .NET 3.5


@pytest.mark.parametrize("codepage,password", [(1252, "Gr\u00fc\u00dfe!"), (1251, "\u041f\u0430\u0440\u043e\u043b\u044c")])
def test_basic_credentials_are_decoded_in_the_ansi_code_page(tmp_path, codepage, password):
    server = WsmanServer([EndpointConfig("CP", auth=("basic",), users={USER: password}, codepage=codepage)],
                         lambda *args: (b"", b"", 0), str(tmp_path))
    port = dict(server.start())["CP"]
    try:
        def status(raw):
            header = "Basic " + base64.b64encode(f"{USER}:".encode("ascii") + raw).decode("ascii")
            return requests.post(f"http://127.0.0.1:{port}/wsman", data=b"<x/>", timeout=10,
                                 headers={"Authorization": header, "Content-Type": "application/soap+xml"}).status_code
        assert status(password.encode(f"cp{codepage}")) != 401     # the bytes Windows expects
        assert status(password.encode("utf-8")) == 401             # UTF-8 is not how Windows reads them
    finally:
        server.stop()
