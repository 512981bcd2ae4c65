#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The naive baseline's module (tests/bench): one WinRM command per property read.

This is the design fix-xcon avoided, written the way a first attempt would be: a real Python
module (AnsiballZ, run on the controller with delegate_to: localhost) that opens one WinRM shell
and runs one small operation to read ONE thing - one attribute of one connector, one event id,
one queue counter, the service state.  It speaks the same wire protocol as the project (the
shipped files/ps scripts, which the lab recognises by hash) and reads the same facts.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: naive_connector_property
short_description: Read one property of one Exchange X.400 connector over WinRM (benchmark baseline)
description:
  - Benchmark baseline only (tests/bench). One WinRM command per call.
options:
  what:
    description: What to read.
    type: str
    required: true
    choices: [connectors, attribute, event, queue, work_queue, service]
  server: {description: Exchange server NetBIOS name., type: str, required: true}
  connector: {description: Connector name (what=attribute)., type: str}
  attribute: {description: Attribute name (what=attribute)., type: str}
  event_id: {description: Event id (what=event)., type: int}
  ps_dir: {description: The project's files/ps directory., type: path, required: true}
  host: {description: WinRM host., type: str, required: true}
  port: {description: WinRM port., type: int, required: true}
  user: {description: WinRM user., type: str, required: true}
  password: {description: WinRM password., type: str, required: true, no_log: true}
  scheme: {description: http or https., type: str, default: http}
  transport: {description: WinRM transport., type: str, default: ntlm}
  cert_validation: {description: validate or ignore., type: str, default: validate}
  ca_trust_path: {description: CA bundle., type: str}
author: fix-xcon maintainers
"""

RETURN = r"""
value: {description: The value read., returned: success, type: raw}
"""

import base64
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.winrm_client import WinRMClient
from ansible.module_utils.xcon.winrm_options import WinRMSettings

SEPARATOR = "\0\0\0\0"
POWERSHELL = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "


def read(ps_dir, name):
    with open(os.path.join(ps_dir, name), encoding="utf-8", newline="") as handle:
        return handle.read()


def run_op(module, client, op, params):
    ps_dir = module.params["ps_dir"]
    line = POWERSHELL + base64.b64encode(read(ps_dir, "bootstrap.ps1").encode("utf-16-le")).decode("ascii")
    request = {"version": 1, "stop_on_error": True, "ops": [{"id": "1", "op": op, "params": params}]}
    # The runner's protocol (docs/design.md, "Wire protocol"): runner, every library part, the op, the request.
    libraries = [read(ps_dir, name) for name in sorted(os.listdir(ps_dir)) if name.startswith("lib_") and name.endswith(".ps1")]
    stdin = SEPARATOR.join([read(ps_dir, "runner.ps1"), *libraries, read(ps_dir, f"op_{op}.ps1"),
                            json.dumps(request, ensure_ascii=True, separators=(",", ":"))]).encode("utf-8")
    rc, stdout, stderr = client.run(line, stdin)
    if rc != 0:
        module.fail_json(msg=f"{op} failed: rc {rc}: {stderr[:300]!r}")
    result = json.loads(stdout.decode("utf-8"))["results"][0]
    if not result.get("ok"):
        module.fail_json(msg=f"{op} failed: {result.get('error')}")
    return result["data"]


def main():
    module = AnsibleModule(argument_spec=dict(
        what=dict(type="str", required=True, choices=["connectors", "attribute", "event", "queue", "work_queue", "service"]),
        server=dict(type="str", required=True), connector=dict(type="str"), attribute=dict(type="str"),
        event_id=dict(type="int"), ps_dir=dict(type="path", required=True),
        host=dict(type="str", required=True), port=dict(type="int", required=True), user=dict(type="str", required=True),
        password=dict(type="str", required=True, no_log=True), scheme=dict(type="str", default="http"),
        transport=dict(type="str", default="ntlm"), cert_validation=dict(type="str", default="validate"),
        ca_trust_path=dict(type="str")), supports_check_mode=True)
    p = module.params
    # A module runs where Ansible's connection plugins are not importable: the settings are given
    # explicitly (the toolkit's action plugins resolve them through the winrm connection plugin).
    kwargs = {"server_cert_validation": p["cert_validation"]}
    if p["ca_trust_path"]:
        kwargs["ca_trust_path"] = p["ca_trust_path"]
    client = WinRMClient(WinRMSettings(host=p["host"], port=p["port"], scheme=p["scheme"], path="/wsman",
                                       transports=[p["transport"]], username=p["user"], password=p["password"],
                                       kwargs=kwargs))
    server, what = p["server"], p["what"]
    search = {"server": server, "base": "", "scope": "subtree"}
    try:
        if what == "connectors":
            data = run_op(module, client, "dir_search", dict(search, classes=["RFC1006-X400-Link"], attributes=["cn", "Home-MTA"]))
            value = [e["attributes"].get("cn") for e in data["entries"]
                     if not e["attributes"].get("Home-MTA") or f"cn={server.lower()}" in str(e["attributes"]["Home-MTA"]).lower()]
        elif what == "attribute":
            data = run_op(module, client, "dir_search", dict(search, classes=["RFC1006-X400-Link"], attributes=["cn", p["attribute"]]))
            value = [e["attributes"].get(p["attribute"]) for e in data["entries"] if str(e["attributes"].get("cn", "")).lower() == p["connector"].lower()]
            value = value[0] if value else None
        elif what == "event":
            # `since` is required (issue 18, defect 6): the audit's evidence window, on the server's clock
            data = run_op(module, client, "event_query", {"server": server, "log": "Application", "source": "MSExchangeMTA",
                                                         "ids": [p["event_id"]], "max": 2000, "since": "-PT120M"})
            value = data["events"]
        elif what in ("queue", "work_queue"):
            path = (f"\\\\{server}\\MSExchangeMTA Connections(*)\\Queue Length" if what == "queue"
                    else f"\\\\{server}\\MSExchangeMTA\\Work Queue Length")
            samples = run_op(module, client, "perf_counters", {"server": server, "paths": [path]})["samples"]
            value = ([s["value"] for s in samples if str(s.get("instance", "")).lower() == (p["connector"] or "").lower()] or [None])[0] \
                if what == "queue" else (samples[0]["value"] if samples else None)
        else:
            value = run_op(module, client, "service", {"server": server, "name": "MSExchangeMTA", "action": "query"})
    except Exception as exc:  # noqa: BLE001
        module.fail_json(msg=f"{type(exc).__name__}: {exc}")
    module.exit_json(changed=False, value=value)


if __name__ == "__main__":
    main()
