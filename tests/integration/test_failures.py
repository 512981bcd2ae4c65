"""Failure modes against the lab: a host that cannot be reached or read never hides behind `ok`,
never stops the report, and never lets a change start half-way; a write cut off by the network
leaves no half-made connector and a re-run converges."""

from __future__ import annotations

import json
import os
import re
import socket

import yaml

from conftest import TOPOLOGIES, directory_and_firewalls

REVERSE = "TO-OUTSIDE-REVERSE"  # default reverse connector name: "<inside connector>-REVERSE"


# -- helpers ----------------------------------------------------------------------------------------
def _codes(link):
    return {f["code"] for f in link["findings"]}


def _finding(link, code, host):
    found = [f for f in link["findings"] if f["code"] == code and f["host"] == host]
    assert found, f"no {code} for {host} on {link['id']}: {[(f['code'], f['host']) for f in link['findings']]}"
    return found[0]


def _link_of(report, host):
    links = [link for link in report["links"] if host in (link["inside"]["host"], link["outside"]["host"])]
    assert len(links) == 1, f"{host} is in {len(links)} links: {[link['id'] for link in report['links']]}"
    return links[0]


def _output(run):
    return run.stdout + "\n" + run.stderr


def _failure_text(run):
    """What Ansible printed from the first failed task onwards."""
    text = _output(run)
    match = re.search(r"^(fatal|failed): ", text, re.M)
    return text[match.start():] if match else ""


def _recap(run):
    """{host: {"ok": n, "failed": n, ...}} from Ansible's PLAY RECAP."""
    recap = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", run.stdout, re.M):
        recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return recap


def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _write_yaml(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)


def _exchange_hosts(inventory):
    return inventory["all"]["children"]["xcon_exchange"]["hosts"]


def _stats(lab, endpoint):
    return json.loads(lab.ctl("stats").stdout)[endpoint]


def _entries(snapshot, server, rdn):
    prefix = f"cn={rdn.lower()},"
    return [e for e in snapshot["servers"][server]["directory"] if e["dn"].lower().startswith(prefix)]


# -- (a) unreachable host ---------------------------------------------------------------------------
def test_unreachable_host_leaves_its_link_unknown_and_the_rest_audited(lab):
    topology = os.path.join(str(lab.tmp), "two-links.yml")
    lab.ctl("generate", "2", "-o", topology)
    servers = _read_yaml(topology)["servers"]
    # a server with exactly one connector is in exactly one link
    lonely = sorted(name for name, server in servers.items() if len(server.get("connectors") or []) == 1)
    assert lonely, f"no server of the generated topology is in one link only: {sorted(servers)}"
    victim = lonely[-1]
    lab.up(topology)
    lab.advance(60)

    inventory = _read_yaml(lab.inventory)
    hosts = _exchange_hosts(inventory)
    assert hosts[victim].get("xcon_management_host", victim) == victim
    hosts[victim]["ansible_port"] = _closed_port()
    _write_yaml(lab.inventory, inventory)

    run = lab.playbook("--check")
    # an audit that could not read a host has not shown the site healthy: non-zero, the host failed
    # in the recap, the report written all the same
    assert run.returncode != 0, _output(run)[-6000:]
    assert _recap(run)[victim]["failed"] == 1, _output(run)[-3000:]
    report = lab.report()
    assert report["summary"]["worst_status"] == "error"  # the other link shows the KB fault
    assert len(report["links"]) == 2, [link["id"] for link in report["links"]]
    dead = _link_of(report, victim)
    assert dead["status"] == "unknown", dead
    assert _finding(dead, "XCON-UNREACHABLE", victim)["severity"] == "unknown"
    assert victim in [h["host"] for h in report["coverage"]["hosts_failed"]]
    assert victim not in report["coverage"]["hosts_scanned"]
    (alive,) = [link for link in report["links"] if link is not dead]
    assert alive["status"] == "error", alive
    assert "XCON-TRANSPARENCY-REFUSAL" in _codes(alive)
    assert not {"XCON-UNREACHABLE", "XCON-ACCESS-DENIED"} & set(_codes(alive))
    assert os.path.isfile(os.path.join(lab.reports, "latest", "report.html"))


# -- (b) wrong password -----------------------------------------------------------------------------
def test_refused_credentials_give_access_denied_and_unknown(lab):
    lab.up("kb.yml")
    lab.advance(60)
    lab.ctl("fault", "EXOUT", "refuse-credentials")
    run = lab.playbook("--check")
    assert run.returncode != 0, _output(run)[-6000:]
    recap = _recap(run)
    assert recap["EXOUT"]["failed"] == 1 and recap["EXIN"]["failed"] == 0, recap
    report = lab.report()
    assert report["summary"]["worst_status"] == "unknown"
    assert report["coverage"]["hosts_scanned"] == ["EXIN"] and report["summary"]["hosts_scanned"] == 1
    (link,) = report["links"]
    assert link["status"] == "unknown", link
    assert _finding(link, "XCON-ACCESS-DENIED", "EXOUT")["severity"] == "unknown"
    assert "XCON-TRANSPARENCY-REFUSAL" not in _codes(link)
    assert "EXOUT" in [h["host"] for h in report["coverage"]["hosts_failed"]]


# -- (c) read-only account --------------------------------------------------------------------------
def test_read_only_account_on_a_healthy_link_is_unknown_never_ok(lab):
    topology = _read_yaml(os.path.join(TOPOLOGIES, "healthy.yml"))
    topology["servers"]["EXIN"]["winrm"]["rights"] = "read-only"
    path = os.path.join(str(lab.tmp), "healthy-read-only.yml")
    _write_yaml(path, topology)
    lab.up(path)
    lab.advance(60)
    audit = lab.playbook("--check")
    assert audit.returncode == 0, _output(audit)[-6000:]
    (link,) = lab.report()["links"]
    assert link["status"] == "unknown", link
    assert _finding(link, "XCON-ACCESS-DENIED", "EXIN")["severity"] == "unknown"


def test_read_only_account_is_reported_and_blocks_changes_before_any_change(lab):
    # On the KB topology the fault is still seen (status error: an observed error is never hidden
    # behind "unknown"), the missing write access is reported, and a fix stops before any change.
    topology = _read_yaml(os.path.join(TOPOLOGIES, "kb.yml"))
    topology["servers"]["EXIN"]["winrm"]["rights"] = "read-only"
    path = os.path.join(str(lab.tmp), "kb-read-only.yml")
    _write_yaml(path, topology)
    lab.up(path)
    lab.advance(60)

    # the audit reads everything; check mode predicts the refusal of the real run (non-zero)
    audit = lab.playbook("--check")
    assert audit.returncode != 0, _output(audit)[-6000:]
    assert "a real run would refuse before any change: EXIN" in " ".join(_output(audit).split()), _output(audit)[-3000:]
    (link,) = lab.report()["links"]
    assert link["status"] == "error", link
    assert _finding(link, "XCON-ACCESS-DENIED", "EXIN")["severity"] == "unknown"

    before = directory_and_firewalls(lab.snapshot())
    fix = lab.playbook(extra={"xcon_workaround": "reverse_connector"})
    assert fix.returncode != 0, _output(fix)[-6000:]
    assert directory_and_firewalls(lab.snapshot()) == before, "a change was made although EXIN is read-only"
    why = _failure_text(fix)
    assert why, _output(fix)[-6000:]
    why = " ".join(why.split())
    assert "EXIN" in why and re.search(r"read-only|write access|cannot write|may not (modify|write|change)|"
                                       r"not allowed to (write|modify|change)|access.denied", why, re.I), why[:3000]


# -- (d) transparency off without the acknowledgement ----------------------------------------------
def test_transparency_off_without_acknowledgement_fails_before_any_change(lab):
    lab.up("kb.yml")
    lab.advance(30)
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook(extra={"xcon_workaround": "transparency_off"})
    assert run.returncode != 0, _output(run)[-6000:]
    assert "xcon_transparency_off_acknowledged" in _failure_text(run), _output(run)[-6000:]
    after = directory_and_firewalls(lab.snapshot())
    assert after == before, "transparency_off without acknowledgement changed the lab"
    assert all(fw["client_transparency"] for fw in after["firewalls"].values())


# -- (e) connection dropped at the write ------------------------------------------------------------
def test_dropped_connection_at_dir_create_leaves_no_half_made_connector(lab):
    lab.up("kb.yml")
    lab.advance(30)

    # Calibrate on this lab: a check-mode run with the same workaround sends, per server, the audit
    # command and one read command per connector task (check mode stops after the read); the
    # change plays run on the servers under --check only with xcon_preview_on_servers.
    start = _stats(lab, "EXIN")
    check = lab.playbook("--check", extra={"xcon_workaround": "reverse_connector", "xcon_preview_on_servers": "true"})
    assert check.returncode == 0, _output(check)[-6000:]
    done = _stats(lab, "EXIN")
    check_commands = done["commands"] - start["commands"]
    check_requests = done["http_requests"] - start["http_requests"]
    assert check_commands >= 2 and check_requests % check_commands == 0, (start, done)
    per_command = check_requests // check_commands
    (planned,) = lab.report()["links"]
    exin_changes = [c for c in planned["changes"] if c["target"] == "EXIN" and c.get("kind", "connector") == "connector"]
    creates = [c for c in exin_changes if c["action"] == "create"]
    assert len(creates) == 1 and creates[0]["object"] == REVERSE, exin_changes
    modifies = len(exin_changes) - 1  # preconditions on EXIN come first: read + write each
    # the real run on EXIN: audit (the back-up is made from it), (read + write) per precondition,
    # read, then the write
    before_write = check_commands + modifies
    # let the write command's handshake, shell and Command through; drop from its Send (the payload)
    drop_after = before_write * per_command + (per_command - 4)
    before = lab.snapshot()
    assert not _entries(before, "EXIN", REVERSE)
    base = _stats(lab, "EXIN")
    lab.ctl("fault", "EXIN", "drop-after", str(drop_after))

    broken = lab.playbook(extra={"xcon_workaround": "reverse_connector"})
    assert broken.returncode != 0, _output(broken)[-6000:]
    after_drop = _stats(lab, "EXIN")
    assert after_drop["commands"] - base["commands"] == before_write + 1, (
        f"the drop did not hit the write command (commands {after_drop['commands'] - base['commands']}, "
        f"expected {before_write + 1}; {per_command} requests per command)")
    out = _output(broken)
    fatal = re.search(r"^(fatal|failed): \[EXIN\]", out, re.M)
    assert fatal, out[-6000:]
    # the failure line names the task (role : task) that failed (wrapped to the terminal's width)
    named = " ".join(out[fatal.end() + 1:fatal.end() + 400].split())
    assert named.startswith("xcon_change : Apply each server's planned changes (one controller task, each server in its own "
                            "thread) of the phase reverse_connector"), out[fatal.start():fatal.start() + 3000]
    half = lab.snapshot()
    made = _entries(half, "EXIN", REVERSE)
    assert len(made) <= 1
    for name, server in before["servers"].items():  # nothing else moved
        others = [e for e in half["servers"][name]["directory"] if not e["dn"].lower().startswith(f"cn={REVERSE.lower()},")]
        assert others == server["directory"], f"{name}: the dropped run changed other directory entries"

    lab.ctl("fault", "EXIN", "clear")
    again = lab.playbook(extra={"xcon_workaround": "reverse_connector"})
    assert again.returncode == 0, _output(again)[-6000:]
    (link,) = lab.report()["links"]
    assert link["verification"]["state"] == "passed", link["verification"]
    final = _entries(lab.snapshot(), "EXIN", REVERSE)
    assert len(final) == 1
    if made:  # the connector the dropped run left was already complete: the re-run did not touch it
        assert made[0] == final[0], "the dropped run left an incomplete reverse connector that the re-run had to repair"
