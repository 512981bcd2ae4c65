"""AWX / AAP: the execution environment's build context and the workflow's branch points.

* `ansible-builder create` (pinned in requirements.txt) turns execution-environment.yml into a build
  context, and that context installs every optional Kerberos/CredSSP package by name (builder drops
  pip extras) and the system packages they need.  (~1 s, no network, no container engine)
* The workflow of docs/awx.md without a terminal, as AWX runs it: the fix stops after the firewall
  change record and publishes `xcon_run_summary` (set_stats) naming the link waiting for the
  operator; the operator carries out the record (the approval node), and the resumed job with
  `xcon_firewall_change_confirmed=true` publishes worst_status_after ok.  (~40 s)
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import yaml

from conftest import BIN, ROOT


def _pins(path):
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]


def _name(pin):
    return re.split(r"[\[=<>]", pin, maxsplit=1)[0].lower()


def test_ansible_builder_creates_the_build_context(tmp_path):
    context = tmp_path / "context"
    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f", os.path.join(ROOT, "execution-environment.yml"),
                           "--context", str(context), "--output-filename", "Containerfile"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    with open(os.path.join(ROOT, "execution-environment.yml"), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    assert spec["version"] == 3
    assert f"FROM {spec['images']['base_image']['name']}" in containerfile.replace("$EE_BASE_IMAGE", spec["images"]["base_image"]["name"]) \
        or spec["images"]["base_image"]["name"] in containerfile
    assert "ansible-core==2.19.14" in containerfile and "ansible-runner==" in containerfile
    built = _pins(str(context / "_build" / "requirements.txt"))
    assert all("[" not in pin for pin in built), f"an extra would be dropped by builder: {built}"
    names = {_name(p) for p in built}
    # every optional transport package, by name: the extras' packages spelled out
    for extra_file in ("requirements-kerberos.txt", "requirements-credssp.txt"):
        for pin in _pins(os.path.join(ROOT, extra_file)):
            assert _name(pin) in names, f"{pin} of {extra_file} is not in the execution environment"
    for pin in _pins(os.path.join(ROOT, "requirements.txt")):
        if _name(pin) in ("pywinrm", "pyspnego", "requests-ntlm", "jinja2", "pyyaml", "cryptography"):
            assert pin in built, f"{pin} (requirements.txt) differs in the execution environment"
    bindep = (context / "_build" / "bindep.txt").read_text(encoding="utf-8")
    for package in ("krb5-workstation", "krb5-devel", "gcc"):
        assert re.search(rf"^{package} \[platform:rpm", bindep, re.M), package
    for script in ("assemble", "install-from-bindep", "pip_install"):
        assert (context / "_build" / "scripts" / script).is_file()


def _custom_stats(stdout):
    """The set_stats data ansible-playbook prints with ANSIBLE_SHOW_CUSTOM_STATS (the dict after RUN:)."""
    start = stdout.index("CUSTOM STATS:")
    text = stdout[start:]
    brace = text.index("{")
    decoder = json.JSONDecoder()
    data, _ = decoder.raw_decode(text[brace:])
    return data["xcon_run_summary"]


def test_workflow_stops_after_the_firewall_record_and_resumes_on_approval(lab):
    lab.up("kb.yml")
    lab.advance(60)
    env_extra = {"xcon_workaround": "firewall_tunnel"}
    lab.env.update(ANSIBLE_SHOW_CUSTOM_STATS="true", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    # AWX: no terminal, and no operator command: the run cannot ask anyone
    first = lab.playbook("-e", json.dumps({"xcon_firewall_operator_command": []}), extra=env_extra)
    assert first.returncode != 0, first.stdout[-4000:]
    stats = _custom_stats(first.stdout)
    assert stats["awaiting_firewall_confirmation"] == ["EXIN<->EXOUT"], stats
    assert stats["worst_status"] == "error" and stats["check_mode"] is False
    assert stats["firewall_records"] and all(os.path.isfile(p) for p in stats["firewall_records"]), stats
    assert stats["report_html"].endswith("report.html") and os.path.isfile(stats["report_html"])
    assert stats["run_id"] in stats["report_html"]
    # the approval node: the operator carries out the record(s) shown, then approves
    for record in stats["firewall_records"]:
        lab.ctl("firewall", "apply", record[:-len(".txt")] + ".json")
    second = lab.playbook("-e", json.dumps({"xcon_firewall_operator_command": []}),
                          extra=dict(env_extra, xcon_firewall_change_confirmed="true"))
    assert second.returncode == 0, second.stdout[-4000:]
    resumed = _custom_stats(second.stdout)
    assert resumed["awaiting_firewall_confirmation"] == [] and resumed["worst_status_after"] == "ok", resumed
    assert resumed["links_by_status_after"]["ok"] == 1 and resumed["run_id"] != stats["run_id"]
