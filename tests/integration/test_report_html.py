"""The HTML report as a browser renders it: headless Chromium reads reports/latest/report.html after
real runs against the lab (the KB fault under --check, after each workaround, and the look-alikes);
the overview table (link, status as found -> after, finding codes) comes before the details, each
link's inline SVG topology carries the real addresses of the topology file (servers, firewall
interfaces, each connector's Stack address on its arrow) and colours each path by its state, and a
screenshot per scenario is kept under artifacts/ (gitignored) for people to look at.

Chromium absent: skipped on a workstation, failed in CI (env CI=true), where scripts/setup installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser

import pytest
import yaml

from conftest import ROOT, TOPOLOGIES

ARTIFACTS = os.path.join(ROOT, "artifacts")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed (CI=true): scripts/setup installs Debian's chromium as root")
    pytest.skip("chromium is not installed (run scripts/setup as root to install it)")
    return None


def _run_chromium(chromium, user_data_dir, *args):
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-3000:]}"
    return proc


class _Page(HTMLParser):
    """The rendered DOM as a flat sequence: where each element with an id starts, the cell texts of
    every row of the table with id ``overview-table``, and per inline ``<svg>`` its texts and the
    class and data attributes of its path groups (topology pictures; other SVGs apart)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.order = []            # element ids (and h2/h3 texts) in document order
        self.overview_rows = []    # [[cell text, ...], ...] of the overview table
        self.svgs = []             # per topology <svg>: [{"label", "texts": [...], "paths": [{class, data-*}]}]
        self.other_svgs = []       # the other inline SVGs (timelines, the fleet's small multiples)
        self.links = []            # every <a href>
        self._in_overview = 0
        self._row = None
        self._cell = None
        self._heading = None
        self._svg = None
        self._svg_text = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.order.append(("id", attrs["id"]))
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "svg":
            self._svg = {"label": attrs.get("aria-label"), "texts": [], "paths": []}
            # the topology pictures (timelines and the fleet's charts are test_report_timeline's)
            (self.svgs if "topology" in (attrs.get("class") or "").split() else self.other_svgs).append(self._svg)
        elif self._svg is not None:
            if tag == "text":
                self._svg_text = ""
            elif tag == "g" and "path" in (attrs.get("class") or "").split():
                self._svg["paths"].append(attrs)
        if tag == "table" and attrs.get("id") == "overview-table":
            self._in_overview = 1
        elif tag == "table" and self._in_overview:
            self._in_overview += 1
        if self._in_overview == 1:
            if tag == "tr":
                self._row = []
            elif tag in ("td", "th") and self._row is not None:
                self._cell = {"text": "", "class": attrs.get("class", "")}
        if tag in ("h2", "h3"):
            self._heading = ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None
        if tag == "text" and self._svg is not None and self._svg_text is not None:
            self._svg["texts"].append(" ".join(self._svg_text.split()))
            self._svg_text = None
        if self._in_overview == 1:
            if tag in ("td", "th") and self._cell is not None and self._row is not None:
                self._row.append(self._cell)
                self._cell = None
            elif tag == "tr" and self._row is not None:
                self.overview_rows.append(self._row)
                self._row = None
        if tag == "table" and self._in_overview:
            self._in_overview -= 1
        if tag in ("h2", "h3") and self._heading is not None:
            self.order.append((tag, " ".join(self._heading.split())))
            self._heading = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._heading is not None:
            self._heading += data
        if self._svg_text is not None:
            self._svg_text += data


def _png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def _topology(name):
    with open(os.path.join(TOPOLOGIES, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _render(chromium, html_path, profile, shot_name):
    url = "file://" + os.path.abspath(html_path)
    dom = _run_chromium(chromium, profile, "--dump-dom", url).stdout
    page = _Page()
    page.feed(dom)
    page.close()
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, shot_name)
    if os.path.exists(shot):
        os.unlink(shot)
    _run_chromium(chromium, profile, f"--screenshot={shot}", "--window-size=1400,1500", "--hide-scrollbars", url)
    assert os.path.isfile(shot), "chromium wrote no screenshot"
    assert _png_size(shot) == (1400, 1500)
    assert os.path.getsize(shot) > 20_000, f"the screenshot is suspiciously small ({os.path.getsize(shot)} bytes)"
    return dom, page


def _overview(page):
    header, *rows = page.overview_rows
    columns = [c["text"].strip().lower() for c in header]
    return columns, {r[columns.index("link")]["text"].strip(): r for r in rows}


def _assert_real_addresses(page, topo):
    """The first SVG (as found) names every server address, both firewall interfaces and every
    primary connector's Stack address exactly as the topology file has them."""
    texts = " | ".join(page.svgs[0]["texts"])
    for name, server in topo["servers"].items():
        assert name in page.svgs[0]["texts"], (name, texts)
        assert server["address"] in page.svgs[0]["texts"], (server["address"], texts)
        for connector in server["connectors"]:
            assert f"Stack {connector['stack_address']}" in page.svgs[0]["texts"], (connector, texts)
    for firewall in topo["firewalls"].values():
        assert f"\u25c2 internal {firewall['interfaces']['internal']}" in page.svgs[0]["texts"], texts
        assert f"external {firewall['interfaces']['external']} \u25b8" in page.svgs[0]["texts"], texts
        transparency = "client transparency ON" if firewall.get("client_transparency") else "client transparency off"
        assert transparency in page.svgs[0]["texts"], texts


def _states(svg):
    return {(p["data-from"], p["data-connector"]): p["class"].split()[1] for p in svg["paths"]}


SCENARIOS = {
    # name: (topology, run arguments, extra vars, status as found, status after, before states, after states)
    "kb-check": ("kb.yml", ("--check",), {}, "error", None,
                 {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "refused"},
                 {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "working"}),
    "after-reverse-connector": ("kb.yml", (), {"xcon_workaround": "reverse_connector"}, "error", "ok",
                                {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "refused"},
                                {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "working"}),
    "after-firewall-tunnel": ("kb.yml", (), {"xcon_workaround": "firewall_tunnel"}, "error", "ok",
                              {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "refused"},
                              {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "working"}),
    "after-transparency-off": ("kb.yml", (), {"xcon_workaround": "transparency_off", "xcon_transparency_off_acknowledged": "true"},
                               "error", "ok",
                               {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "refused"},
                               {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "working"}),
    # Never: the outside's associations are refused by the Never connector (not by transparency);
    # the plan's precondition (schedule Always) makes both sides open and be accepted
    "lookalike-never": ("never.yml", ("--check",), {}, "error", None,
                        {("outside", "TO-INSIDE"): "refused"},
                        {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "working"}),
    # both remote-initiated: no side opens, no arrow at all; the preconditions make both open
    "lookalike-both-remote": ("both-remote.yml", ("--check",), {}, "error", None, {},
                              {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "working"}),
    "healthy": ("healthy.yml", ("--check",), {}, "ok", None,
                {("inside", "TO-OUTSIDE"): "working", ("outside", "TO-INSIDE"): "working"}, None),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_html_report_pictures_each_scenario(lab, tmp_path, scenario):
    topology, args, extra, found, after, before_states, after_states = SCENARIOS[scenario]
    chromium = _chromium()
    lab.up(topology)
    lab.advance(60)
    run = lab.playbook(*args, extra=extra)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    html_path = os.path.join(lab.reports, "latest", "report.html")
    assert os.path.isfile(html_path), "the run wrote no reports/latest/report.html"
    dom, page = _render(chromium, html_path, str(tmp_path / "chromium-profile"), f"report-{scenario}.png")
    report = lab.report()

    # one offline file: no external script, stylesheet, image or font
    assert not re.search(r'<(script|link|img)\b[^>]*(src|href)="(https?:)?//', dom), "the report loads an external asset"
    # the overview: one row per link, status as found -> after, finding codes linking to their pages
    columns, rows = _overview(page)
    row = rows["EXIN<->EXOUT"]
    assert row[columns.index("status")]["text"].strip() == found
    assert found in row[columns.index("status")]["class"].split(), "the status cell does not carry its colour"
    after_cell = row[columns.index("after")]
    if after is None:
        assert "check-banner" in [v for k, v in page.order if k == "id"], "no check-mode banner"
    else:
        assert after_cell["text"].strip() == after and after in after_cell["class"].split()
    codes = {f["code"] for link in report["links"] for f in link["findings"]}
    for code in codes:
        target = [h for h in page.links if h.endswith(f"/{code}.md")]
        assert target, f"no link to {code}'s page"
        assert os.path.isfile(os.path.normpath(os.path.join(os.path.dirname(html_path), target[0]))), target[0]
    # overview first, details after
    ids = [value for kind, value in page.order if kind == "id"]
    assert ids.index("overview-table") < ids.index("details") < ids.index("link-1")

    # the pictures: the real addresses, the path states, before and after side by side
    assert page.svgs, "no inline SVG topology"
    _assert_real_addresses(page, _topology(topology))
    assert _states(page.svgs[0]) == before_states, page.svgs[0]["paths"]
    if after_states is not None:
        assert len(page.svgs) == 2, [s["label"] for s in page.svgs]
        assert page.svgs[1]["label"] == ("after (planned, not done)" if "--check" in args else "after the changes")
        assert _states(page.svgs[1]) == after_states, page.svgs[1]["paths"]
    else:
        assert len(page.svgs) == 1, [s["label"] for s in page.svgs]
    if after is not None:
        # the run changed something: backup, change records (firewall workarounds) and the rollback command
        assert report["artifacts"]["rollback_command"] == (
            f"ansible-playbook playbooks/rollback.yml -e xcon_rollback_run_id={report['run_id']} -e xcon_report_dir={lab.reports}")
        assert report["artifacts"]["rollback_command"] in dom
        assert any(h.endswith("/backup/") for h in page.links)
        for record in report["artifacts"]["firewall_records"]:
            assert os.path.isfile(os.path.join(lab.reports, report["run_id"], record))
