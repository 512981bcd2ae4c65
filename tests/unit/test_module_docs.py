"""Every module's documented face: ansible-doc renders it, and its options are exactly the
argument spec the action plugin validates with (one source of truth, kept in step)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest
import yaml

from xcon import specs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "library", "xcon_*.py")))
SPEC_OF = {
    "xcon_connector_info": specs.CONNECTOR_INFO, "xcon_mta_evidence": specs.MTA_EVIDENCE,
    "xcon_connector": specs.CONNECTOR, "xcon_mta_service": specs.MTA_SERVICE,
    "xcon_firewall_facts": specs.FIREWALL_FACTS, "xcon_firewall_change": specs.FIREWALL_CHANGE,
    "xcon_diagnose": specs.DIAGNOSE, "xcon_verify": specs.VERIFY, "xcon_report": specs.REPORT,
    "xcon_run_lock": specs.RUN_LOCK, "xcon_rollback_plan": specs.ROLLBACK_PLAN,
    "xcon_validate": specs.VALIDATE,
    "xcon_link_gate": specs.LINK_GATE,
}


def test_every_module_has_a_spec_and_an_action_plugin():
    assert set(MODULES) == set(SPEC_OF)
    for name in MODULES:
        assert os.path.exists(os.path.join(ROOT, "action_plugins", f"{name}.py")), name


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders_and_matches_the_spec(name):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    doc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "-t", "module", "--json", name],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert doc.returncode == 0, doc.stderr
    data = json.loads(doc.stdout)[name]
    options = data["doc"]["options"]
    spec = SPEC_OF[name]
    assert set(options) == set(spec), f"{name}: documented {sorted(options)} vs spec {sorted(spec)}"
    for option, rule in spec.items():
        documented = options[option]
        assert documented.get("type", "str") == rule.get("type", "str"), (name, option)
        assert bool(documented.get("required", False)) == bool(rule.get("required", False)), (name, option)
        if "default" in rule:
            assert documented.get("default") == rule["default"], (name, option)
        if "choices" in rule:
            assert documented.get("choices") == rule["choices"], (name, option)
    assert data["examples"].strip() and yaml.safe_load(data["examples"])
    assert data["return"], name


def test_secret_options_are_no_log():
    for name, spec in SPEC_OF.items():
        for option, rule in spec.items():
            if "password" in option or "cred" in option:
                assert rule.get("no_log") is True, (name, option)
