"""No secret leaves the toolkit: with the KB lab, an audit and a full fix at -vvv; neither the console
output nor any file the runs wrote (report dir with raw data, backups and firewall records; the
toolkit's state dir) contains the WinRM password or a remote-MTA password of the topology, in clear
or in the encodings the directory uses (octet strings as hex, UTF-8 or UTF-16LE)."""

from __future__ import annotations

import base64
import os

import yaml

from conftest import TOPOLOGIES


def _secret_values(obj, found, key=""):
    """Every non-empty string under a key that names a password (winrm.password,
    connectors[].remote_password, any *password* key the topology may add)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _secret_values(v, found, str(k))
    elif isinstance(obj, list):
        for v in obj:
            _secret_values(v, found, key)
    elif isinstance(obj, str) and "password" in key.lower() and obj:
        found.add(obj)
    return found


def _topology_secrets(name):
    with open(os.path.join(TOPOLOGIES, name), encoding="utf-8") as handle:
        topology = yaml.safe_load(handle)
    return sorted(_secret_values(topology, set()))


def _needles(secret):
    """The secret as it could appear in text: clear, hex of UTF-8/UTF-16LE (octet strings), base64."""
    raw, wide = secret.encode("utf-8"), secret.encode("utf-16-le")
    needles = {secret.encode("utf-8"): "clear text", raw.hex().encode(): "hex (UTF-8)",
               raw.hex().upper().encode(): "HEX (UTF-8)", wide.hex().encode(): "hex (UTF-16LE)",
               wide.hex().upper().encode(): "HEX (UTF-16LE)"}
    if len(raw) >= 6:
        needles[base64.b64encode(raw).rstrip(b"=")] = "base64 (UTF-8)"
        needles[base64.b64encode(wide).rstrip(b"=")] = "base64 (UTF-16LE)"
    return needles


def _leaks_in(data, where, secrets):
    leaks = []
    for secret in secrets:
        for needle, form in _needles(secret).items():
            start = data.find(needle)
            if start >= 0:
                line = data.count(b"\n", 0, start) + 1
                context = data[max(0, start - 120):start + len(needle) + 60].decode("utf-8", "replace")
                leaks.append(f"{where}:{line}: {secret!r} as {form}: ...{context}...")
    return leaks


def _files_under(directory):
    for base, _dirs, files in os.walk(directory):
        for name in sorted(files):
            yield os.path.join(base, name)


def test_no_secret_in_output_reports_backups_or_state(lab):
    secrets = _topology_secrets("kb.yml")
    assert secrets, "kb.yml names no password: the test would prove nothing"
    lab.up("kb.yml")
    lab.advance(30)

    audit = lab.playbook("--check", "--diff", "-vvv")
    assert audit.returncode == 0, audit.stdout[-4000:] + audit.stderr[-2000:]
    fix = lab.playbook("--diff", "-vvv", extra={"xcon_workaround": "reverse_connector"})
    assert fix.returncode == 0, fix.stdout[-6000:] + fix.stderr[-2000:]

    leaks = []
    for label, run in (("audit -vvv", audit), ("fix -vvv", fix)):
        leaks += _leaks_in(run.stdout.encode("utf-8"), f"<{label} stdout>", secrets)
        leaks += _leaks_in(run.stderr.encode("utf-8"), f"<{label} stderr>", secrets)

    state_dir = os.path.join(str(lab.tmp), "state")
    scanned = []
    for directory in (lab.reports, state_dir):
        for path in _files_under(directory):
            scanned.append(os.path.relpath(path, str(lab.tmp)))
            with open(path, "rb") as handle:
                leaks += _leaks_in(handle.read(), path, secrets)

    # the scan covered what matters: the reports, the raw data and the backups of the fix run
    assert any(p.endswith("report.json") for p in scanned), scanned
    assert any(p.endswith("report.html") for p in scanned), scanned
    assert any(f"{os.sep}backup{os.sep}" in p for p in scanned), f"the fix run wrote no backup: {scanned}"
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
