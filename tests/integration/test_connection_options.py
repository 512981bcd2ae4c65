"""The same lab hosts through an inventory written in each common style, audited by fix-xcon and
reached by Ansible's own `ansible -m raw` (the winrm connection plugin): both must agree.

Lab: the KB topology (clock frozen after an emulated hour) with EXIN on http+NTLM and EXOUT on https (the lab's CA) with Basic and NTLM.
Styles: the lab's own inventory; the winrm plugin's aliases (ansible_winrm_host/_port/_user/
_password/_pass); no credentials in the inventory but `-u` and `--connection-password-file` on the
command line (how AWX passes a machine credential); credentials in group_vars/ (ansible_ssh_pass); a `constructed`
inventory composing them from other variables.  Then failures that both must see alike: a wrong
password (given through an alias), a CA file that does not exist, Kerberos and CredSSP without
their Python library.  And the management-host path: its own settings, the command line's password.

Cost: about 60-90 s (5 check-mode audits, 5 raw runs, 10 ad-hoc module runs, two labs).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile

import pytest
import yaml

from conftest import BIN, ROOT, TOPOLOGIES, Lab

USER, PASSWORD = "CONTOSO\\xcon", "S3cret!"
CONNECTION_VARS = ("ansible_host", "ansible_port", "ansible_user", "ansible_password", "ansible_winrm_scheme",
                   "ansible_winrm_transport", "ansible_winrm_server_cert_validation", "ansible_winrm_ca_trust_path")
# What the lab's emulated host answers to a command it does not run (tests/lab/xconlab_lab/handler.py):
# seen only after the WinRM logon succeeded and the command was accepted.
LAB_ANSWER = "not one this emulated host knows"


@pytest.fixture(scope="module")
def styles_lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("connopts")
    with open(os.path.join(TOPOLOGIES, "kb.yml"), encoding="utf-8") as handle:
        topology = yaml.safe_load(handle)
    topology = copy.deepcopy(topology)
    topology["servers"]["EXIN"]["winrm"].update(scheme="http", auth=["ntlm"])
    topology["servers"]["EXOUT"]["winrm"].update(scheme="https", auth=["basic", "ntlm"])
    for server in topology["servers"].values():
        server["winrm"].pop("port", None)
    topology["time_scale"] = 0  # a frozen clock: every style reads the same lab state
    path = base / "topology.yml"
    path.write_text(yaml.safe_dump(topology, sort_keys=False, allow_unicode=True), encoding="utf-8")
    lab = Lab(base)
    lab.up(str(path))
    lab.advance(60)
    yield lab
    lab.down()


def _inventory(lab):
    with open(lab.inventory, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        if isinstance(data, str):
            handle.write(data)
        else:
            yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)
    return path


def _split(lab):
    """(inventory without the Exchange hosts' connection variables, {host: those variables})."""
    inventory = _inventory(lab)
    hosts = inventory["all"]["children"]["xcon_exchange"]["hosts"]
    conn = {name: {k: host.pop(k) for k in CONNECTION_VARS if k in host} for name, host in hosts.items()}
    for host in hosts.values():
        host.pop("ansible_connection", None)
    assert {c["ansible_winrm_scheme"] for c in conn.values()} == {"http", "https"}
    return inventory, conn


def make_styles(lab, root):
    """{style: (inventory path, extra command-line arguments)}."""
    styles = {"canonical": (lab.inventory, [])}
    stripped, conn = _split(lab)

    # 1. the winrm plugin's aliases
    aliased = copy.deepcopy(stripped)
    for index, (name, host) in enumerate(aliased["all"]["children"]["xcon_exchange"]["hosts"].items()):
        c = conn[name]
        host.update({"ansible_connection": "winrm", "ansible_winrm_host": c["ansible_host"],
                     "ansible_winrm_port": c["ansible_port"], "ansible_winrm_user": c["ansible_user"],
                     # both password aliases: ansible_winrm_password on one host, ansible_winrm_pass on the other
                     ("ansible_winrm_password" if index == 0 else "ansible_winrm_pass"): c["ansible_password"],
                     "ansible_winrm_scheme": c["ansible_winrm_scheme"], "ansible_winrm_transport": c["ansible_winrm_transport"],
                     "ansible_winrm_ca_trust_path": c["ansible_winrm_ca_trust_path"]})
    styles["aliases"] = (_write(os.path.join(root, "aliases", "hosts.yml"), aliased), [])

    # 2. no credentials in the inventory: -u and the connection password file (AWX machine credential)
    cli = copy.deepcopy(stripped)
    for name, host in cli["all"]["children"]["xcon_exchange"]["hosts"].items():
        host.update({k: v for k, v in conn[name].items() if k not in ("ansible_user", "ansible_password")},
                    ansible_connection="winrm")
    password_file = _write(os.path.join(root, "cli", "conn-pass"), PASSWORD + "\n")
    styles["cli"] = (_write(os.path.join(root, "cli", "hosts.yml"), cli), ["-u", USER, "--connection-password-file", password_file])

    # 3. credentials and common settings in group_vars/, only address and scheme per host (INI hosts file)
    grouped_dir = os.path.join(root, "group_vars_style")
    rest = copy.deepcopy(stripped)
    exchange = rest["all"]["children"].pop("xcon_exchange")["hosts"]
    lines = ["[xcon_exchange]"]
    for name, host in exchange.items():
        c = conn[name]
        pairs = [f"ansible_host={c['ansible_host']}", f"ansible_port={c['ansible_port']}",
                 f"ansible_winrm_scheme={c['ansible_winrm_scheme']}"]
        pairs += [f"{k}={v}" for k, v in host.items()]
        lines.append(" ".join([name] + pairs))
    _write(os.path.join(grouped_dir, "10-exchange.ini"), "\n".join(lines) + "\n")
    _write(os.path.join(grouped_dir, "00-rest.yml"), rest)
    ca = next(iter(conn.values()))["ansible_winrm_ca_trust_path"]
    _write(os.path.join(grouped_dir, "group_vars", "xcon_exchange.yml"), {  # the older ansible_ssh_pass name
        "ansible_connection": "winrm", "ansible_user": USER, "ansible_ssh_pass": PASSWORD,
        "ansible_winrm_transport": "ntlm", "ansible_winrm_ca_trust_path": ca})
    styles["group_vars"] = (grouped_dir, [])

    # 4. a constructed inventory: connection variables composed from the organisation's own names
    constructed_dir = os.path.join(root, "constructed")
    source = copy.deepcopy(stripped)
    for name, host in source["all"]["children"]["xcon_exchange"]["hosts"].items():
        c = conn[name]
        host.update(site_address=c["ansible_host"], site_winrm_port=c["ansible_port"], site_tls=c["ansible_winrm_scheme"] == "https")
    source["all"]["vars"].update(site_account=USER, site_secret=PASSWORD, site_ca=ca)
    _write(os.path.join(constructed_dir, "10-source.yml"), source)
    _write(os.path.join(constructed_dir, "20-constructed.yml"), {
        "plugin": "ansible.builtin.constructed", "strict": True,
        "compose": {"ansible_connection": "'winrm'", "ansible_host": "site_address", "ansible_port": "site_winrm_port",
                    "ansible_winrm_scheme": "site_tls | ternary('https', 'http')", "ansible_user": "site_account",
                    "ansible_winrm_password": "site_secret", "ansible_winrm_transport": "'ntlm'",
                    "ansible_winrm_ca_trust_path": "site_ca"},
        "groups": {"windows_winrm": "site_address is defined"}})
    styles["constructed"] = (constructed_dir, [])
    return styles


def _env(lab, **extra):
    return dict(lab.env, **extra)


def adhoc(lab, inventory, extra_args, module, args="", limit="xcon_exchange", env=None):
    """`ansible -m MODULE --tree DIR` (one JSON result per host): {host: result}."""
    tree = tempfile.mkdtemp(dir=lab.tmp, prefix="tree-")
    cmd = [os.path.join(BIN, "ansible"), "-i", inventory, limit, "-m", module, "--tree", tree, *extra_args]
    if args:
        cmd += ["-a", args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env or _env(lab), capture_output=True, text=True, timeout=300)
    results = {}
    for name in os.listdir(tree):
        with open(os.path.join(tree, name), encoding="utf-8") as handle:
            results[name] = json.load(handle)
    assert results, f"no result from {' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return results


def raw_reached(result):
    """Ansible's raw module logged on and ran the command (the lab then refuses to run it)."""
    return not result.get("unreachable") and LAB_ANSWER in (result.get("stdout", "") + result.get("stderr", ""))


def audit(lab, inventory, extra_args, name):
    reports = os.path.join(lab.tmp, f"reports-{name}")
    # the audit phase (playbooks/audit.yml: read, diagnose, plan, report), as fix-xcon.yml --check runs it
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(ROOT, "playbooks", "audit.yml"), "--check",
           *extra_args, "-e", f"xcon_report_dir={reports}", "-e", f"xcon_state_dir={lab.tmp}/state-{name}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=lab.env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{name}: {proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    with open(os.path.join(reports, "latest", "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    return {link["id"]: (link["status"], sorted(f["code"] for f in link["findings"]), link["recommended_workaround"])
            for link in report["links"]}


def test_every_inventory_style_audits_alike_and_agrees_with_ansible_raw(styles_lab, tmp_path):
    styles = make_styles(styles_lab, str(tmp_path))
    audits, raws = {}, {}
    for name, (inventory, extra_args) in styles.items():
        raws[name] = adhoc(styles_lab, inventory, extra_args, "raw", "hostname")
        audits[name] = audit(styles_lab, inventory, extra_args, name)
    expected = audits["canonical"]
    assert expected["EXIN<->EXOUT"][0] == "error" and "XCON-TRANSPARENCY-REFUSAL" in expected["EXIN<->EXOUT"][1]
    assert not {"XCON-UNREACHABLE", "XCON-ACCESS-DENIED"} & set(expected["EXIN<->EXOUT"][1])
    for name in styles:
        assert set(raws[name]) == {"EXIN", "EXOUT"}, (name, raws[name])
        assert all(raw_reached(result) for result in raws[name].values()), (name, raws[name])
        assert audits[name] == expected, (name, audits[name], expected)


def test_failures_agree_with_ansible_raw(styles_lab, tmp_path):
    styles = make_styles(styles_lab, str(tmp_path))
    inventory, _ = styles["aliases"]
    info_args = "fail_on_error=false"

    # a wrong password given through the alias: Ansible cannot log on, fix-xcon reports access denied
    wrong = ["-e", "ansible_winrm_password=wrong", "-e", "ansible_winrm_pass=wrong"]
    raw = adhoc(styles_lab, inventory, wrong, "raw", "hostname")
    ours = adhoc(styles_lab, inventory, wrong, "xcon_connector_info", info_args)
    assert all(r.get("unreachable") for r in raw.values()), raw
    assert {h: r["xcon_error"]["code"] for h, r in ours.items()} == {"EXIN": "XCON-ACCESS-DENIED", "EXOUT": "XCON-ACCESS-DENIED"}
    assert "wrong" not in json.dumps(ours)

    # a CA file that does not exist: a TLS failure that names the path, not "cannot reach the host"
    missing_ca = ["-e", "ansible_winrm_ca_trust_path=/nonexistent/contoso-ca.pem"]
    raw = adhoc(styles_lab, inventory, missing_ca, "raw", "hostname", limit="EXOUT")
    ours = adhoc(styles_lab, inventory, missing_ca, "xcon_connector_info", info_args, limit="EXOUT")
    assert raw["EXOUT"].get("unreachable") and "/nonexistent/contoso-ca.pem" in raw["EXOUT"]["msg"], raw
    error = ours["EXOUT"]["xcon_error"]
    assert error["code"] == "XCON-TLS-FAILED" and "/nonexistent/contoso-ca.pem" in error["reason"], error
    assert "cannot reach" not in error["reason"]

    # Kerberos and CredSSP without their library (made absent for these runs by a module that
    # refuses to import): both name what is missing; fix-xcon names the package to install
    shadow = tmp_path / "without-libraries"
    shadow.mkdir()
    for module in ("kerberos", "winkerberos", "requests_credssp"):
        (shadow / f"{module}.py").write_text(f"raise ImportError('{module} is not installed (test)')\n")
    env = _env(styles_lab, PYTHONPATH=str(shadow))
    for transport, package, extras in (("kerberos", "pykerberos", "requirements-kerberos.txt"),
                                       ("credssp", "requests-credssp", "requirements-credssp.txt")):
        switch = ["-e", f"ansible_winrm_transport={transport}"]
        raw = adhoc(styles_lab, inventory, switch, "raw", "hostname", limit="EXIN", env=env)
        ours = adhoc(styles_lab, inventory, switch, "xcon_connector_info", info_args, limit="EXIN", env=env)
        assert raw["EXIN"].get("unreachable") or raw["EXIN"].get("failed"), raw
        error = ours["EXIN"]["xcon_error"]
        assert error["code"] == "XCON-CLIENT-LIBRARY-MISSING", error
        assert package in error["reason"] and extras in error["reason"], error


def test_a_management_host_is_reached_with_its_own_settings_and_the_command_line_password(lab, tmp_path):
    """EXIN (NT 4.0) is read through MGMT1: MGMT1's variables count, never EXIN's own; with no
    password in the inventory at all, the command line's reaches the management host."""
    lab.up("mgmt.yml")
    inventory = _inventory(lab)
    hosts = inventory["all"]["children"]["xcon_exchange"]["hosts"]
    assert hosts["EXIN"]["xcon_management_host"] == "MGMT1"
    # MGMT1 must carry the user's identity on to EXIN (the second hop): CredSSP, not the NTLM the
    # lab's inventory uses (that is tests/integration/test_second_hop.py)
    inventory["all"]["children"]["xcon_management_hosts"]["hosts"]["MGMT1"]["ansible_winrm_transport"] = "credssp"
    # EXIN's own connection variables are wrong: they must not be used for MGMT1
    broken = copy.deepcopy(inventory)
    broken["all"]["children"]["xcon_exchange"]["hosts"]["EXIN"].update(
        ansible_port=1, ansible_password="not-mgmt1s-password", ansible_winrm_transport="basic")
    ours = adhoc(lab, _write(str(tmp_path / "broken.yml"), broken), [], "xcon_connector_info", "fail_on_error=false",
                 limit="EXIN")
    assert "xcon_error" not in ours["EXIN"] and ours["EXIN"]["connectors"], ours
    # no password anywhere: -u and the connection password file (AWX) reach MGMT1 and EXOUT
    bare = copy.deepcopy(inventory)
    for group in ("xcon_exchange", "xcon_management_hosts"):
        for host in bare["all"]["children"][group]["hosts"].values():
            host.pop("ansible_user", None)
            host.pop("ansible_password", None)
    password_file = _write(str(tmp_path / "conn-pass"), PASSWORD + "\n")
    ours = adhoc(lab, _write(str(tmp_path / "bare.yml"), bare), ["-u", USER, "--connection-password-file", password_file],
                 "xcon_connector_info", "fail_on_error=false")
    assert {h: ("xcon_error" in r, bool(r.get("connectors"))) for h, r in ours.items()} == \
        {"EXIN": (False, True), "EXOUT": (False, True)}, ours
