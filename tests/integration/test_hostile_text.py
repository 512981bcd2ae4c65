"""Issue 22, case 9: text from servers and topologies is inert everywhere.

A connector named with terminal escapes and one with a right-to-left override: the console
and the HTML report (tables and the SVG picture) show the characters as escapes (\\x1b, \\u202e) and
keep the label; the lab's generated inventory is data, so an organisation named like a Jinja
expression that runs a command never runs it.  On the code before the fix the console printed the
escapes raw (clearing the screen, drawing green "ALL OK"), the HTML carried them and the SVG lost the
label, and the inventory's organisation ran its command during the audit."""

from __future__ import annotations

import os

import yaml

from conftest import TOPOLOGIES

HOSTILE = "TO-OUTSIDE\x1b[2J\x1b[32mALL OK"
RLO = "TO-INSIDE \u202eKO ot"


def _topology(tmp_path, change):
    with open(os.path.join(TOPOLOGIES, "kb.yml"), encoding="utf-8") as handle:
        topology = yaml.safe_load(handle)
    change(topology)
    path = tmp_path / "hostile.yml"
    path.write_text(yaml.safe_dump(topology, allow_unicode=True), encoding="utf-8")
    return str(path)


def _rename(topology):
    exin = topology["servers"]["EXIN"]
    exin["connectors"][0]["name"] = HOSTILE
    exin["queued"] = {HOSTILE: 0}
    exout = topology["servers"]["EXOUT"]
    exout["connectors"][0]["name"] = RLO
    exout["queued"] = {RLO: 0}


def test_control_and_bidi_characters_from_servers_are_shown_as_escapes(lab, tmp_path):
    lab.up(_topology(tmp_path, _rename))
    lab.advance(60)
    run = lab.playbook("--check", "--diff")
    out = run.stdout + run.stderr
    assert "TO-OUTSIDE" in out, out[-3000:]
    assert "\x1b" not in out and "\u202e" not in out, repr(out[-3000:])
    assert "TO-OUTSIDE\\x1b[2J\\x1b[32mALL OK" in out, out[-3000:]
    report = lab.report()
    assert any(link["inside"]["connector"] == HOSTILE for link in report["links"]), report["links"]  # the data keeps the name
    with open(os.path.join(lab.reports, "latest", "report.html"), encoding="utf-8") as handle:
        html = handle.read()
    assert "\x1b" not in html and "\u202e" not in html
    assert "TO-OUTSIDE\\x1b[2J\\x1b[32mALL OK" in html and "TO-INSIDE \\u202eKO ot" in html
    start = html.index('class="topology"')  # the topology picture (the fleet's charts and the timelines are SVGs too)
    svg = html[start:html.index("</svg>", start)]
    assert "TO-OUTSIDE\\x1b[2J\\x1b[32mALL OK" in svg, svg[:3000]


def test_the_lab_inventory_is_data_an_organisation_never_runs_a_command(lab, tmp_path):
    marker = tmp_path / "pwned"
    lab.env["XCON_PWNED"] = str(marker)

    def organisation(topology):
        topology["organization"] = "{{ lookup('pipe', 'touch $XCON_PWNED') }}"
    lab.up(_topology(tmp_path, organisation))
    run = lab.playbook("--check")
    assert not marker.exists(), "the organisation name in the lab inventory ran a command"
    with open(lab.inventory, encoding="utf-8") as handle:
        assert "!unsafe" in handle.read()
    assert "lookup('pipe'" in run.stdout + run.stderr or os.path.exists(os.path.join(lab.reports, "latest", "report.json")), run.stdout[-3000:]
