"""The audit on Windows' real MTA events (docs/facts.md "MTA events"), one lab, one --check run, four
links of a generated topology, each with another event behaviour of the inside server:

1. 5.5 SP4, no PTR record for the outside server: its 9301 carries the address as octets;
2. 5.5 SP2 (build 2448.1, KB Q234962): no 9301 at all;
3. message DLL unreachable on both servers: only the insertion strings survive;
4. no traffic, only a replayed Application log with the texts KB Q196381 and Q193380 quote
   (tests/fixtures/kb_events.yml; topology key event_log).

Links 1-3 must get the same diagnosis (the KB fault, error, same workaround), each with its basis."""

from __future__ import annotations

import ipaddress
import os

import yaml

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kb_events.yml")
KB = "XCON-TRANSPARENCY-REFUSAL"


def _kb_texts():
    with open(FIXTURES, encoding="utf-8") as handle:
        fixtures = yaml.safe_load(handle)

    def text(article, event_id):
        return next(f for f in fixtures if f["article"] == article and f["id"] == event_id)
    return text


def _topology(lab, tmp_path):
    path = tmp_path / "events.yml"
    lab.ctl("generate", "4", "-o", str(path))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    servers = data["servers"]
    servers["EXIN001"]["reverse_lookup"] = {servers["EXOUT001"]["address"]: None}
    servers["EXIN002"]["mta_build"] = "2448.1"
    servers["EXIN003"]["message_dll"] = servers["EXOUT003"]["message_dll"] = "unreachable"
    # link 4: the connectors carry the article's name, the servers only the article's log
    text = _kb_texts()
    for name, peer in (("EXIN004", "OUTSIDE004"), ("EXOUT004", "INSIDE004")):
        servers[name]["connectors"][0]["name"] = "ConnectorName"
        servers[name]["queued"] = {"ConnectorName": 0}
    servers["EXOUT004"]["event_log"] = [
        dict({k: text("Q196381", i)[k] for k in ("id", "type", "category", "message")},
             source="MSExchangeMTA", minutes_ago=40 - 3 * n - k)
        for n in range(3) for k, i in enumerate((1290, 289, 1294))]
    servers["EXIN004"]["event_log"] = [
        dict({k: text(article, i)[k] for k in ("id", "type", "category", "message")},
             source="MSExchangeMTA", minutes_ago=ago)
        for article, i, ago in (("Q193380", 9301, 31), ("Q196381", 1293, 30))]
    data["traffic"] = [t for t in data["traffic"] if "004" not in t["from"]]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path), data


def test_the_kb_fault_on_real_events_with_and_without_9301(lab, tmp_path):
    path, data = _topology(lab, tmp_path)
    lab.up(path)
    lab.advance(60)
    snap = lab.snapshot()
    out1 = data["servers"]["EXOUT001"]["address"]
    octets = ipaddress.ip_address(out1).packed.hex().upper()
    assert {e["strings"][1] for e in snap["servers"]["EXIN001"]["events"] if e["id"] == 9301} == {octets}
    assert not [e for e in snap["servers"]["EXIN002"]["events"] if e["id"] == 9301]
    run = lab.playbook("--check")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    links = {link["id"]: link for link in lab.report()["links"]}
    findings = {i: {f["code"]: f for f in link["findings"]} for i, link in links.items()}

    def shape(link_id):
        link = links[link_id]
        return ({(f["code"], f["severity"]) for f in link["findings"]}, link["status"], link["recommended_workaround"])

    # 1: the 9301 carries the outside server's octets; the report shows them decoded
    kb1 = findings["EXIN001<->EXOUT001"][KB]
    assert kb1["severity"] == "error" and kb1["evidence"]["confirmed_by_9301"] is True
    assert kb1["evidence"]["addresses_9301_decoded"] == [{"hex": octets, "address": out1, "outside_server": True}]
    assert f"{octets} = {out1}" in kb1["message"]
    # 2: SP2 logs no 9301: the same diagnosis, its basis stated
    kb2 = findings["EXIN002<->EXOUT002"][KB]
    assert shape("EXIN002<->EXOUT002") == shape("EXIN001<->EXOUT001")
    assert kb2["evidence"]["confirmed_by_9301"] is False and kb2["evidence"]["addresses_9301_decoded"] == []
    assert "no event 9301" in kb2["evidence"]["basis_detail"] and "events 1293 on EXIN002" in kb2["evidence"]["basis_detail"]
    # 3: no message DLL: every event still attributed to its connector
    kb3 = findings["EXIN003<->EXOUT003"][KB]
    assert shape("EXIN003<->EXOUT003") == shape("EXIN001<->EXOUT001")
    outside = kb3["evidence"]["outside_events"]
    assert min(outside.values()) > 0, outside
    assert kb3["evidence"]["inside_events"]["1293"] > 0
    samples = kb3["evidence"]["outside_samples"] + kb3["evidence"]["inside_samples"]
    assert samples and all(s["message"].startswith("The description for Event ID '") for s in samples)
    fqdn = data["servers"]["EXOUT003"]["fqdn"]
    assert kb3["evidence"]["addresses_9301_decoded"][0]["address"] == fqdn   # SP4 with a PTR: the name
    # 4: a replayed real log: the article's own texts name the fault
    kb4 = findings["EXIN004<->EXOUT004"][KB]
    assert kb4["severity"] == "error" and kb4["connector"] == "ConnectorName"
    assert kb4["evidence"]["outside_events"] == {"1290": 3, "289": 3, "1294": 3}
    assert kb4["evidence"]["inside_events"]["1293"] == 1
    assert {"hex": "91F5C11B", "address": "145.245.193.27", "outside_server": False} in kb4["evidence"]["addresses_9301_decoded"]
