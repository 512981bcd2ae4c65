"""The audit's HTML report as a browser renders it: headless Chromium reads reports/latest/report.html
of a check-mode run against the KB lab; the overview table (link, status, finding codes) comes
before the details, and a screenshot is kept under artifacts/ (gitignored) for people to look at.

Chromium absent: skipped on a workstation, failed in CI (env CI=true), where scripts/setup installs it.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser

import pytest

from conftest import ROOT

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
    """The rendered DOM as a flat sequence: where each element with an id starts, and the cell texts
    of every row of the table with id ``overview-table``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.order = []            # element ids (and h2/h3 texts) in document order
        self.overview_rows = []    # [[cell text, ...], ...] of the overview table
        self._in_overview = 0
        self._row = None
        self._cell = None
        self._heading = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.order.append(("id", attrs["id"]))
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


def _png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_html_report_renders_overview_before_details(lab, tmp_path):
    chromium = _chromium()
    lab.up("kb.yml")
    lab.advance(60)
    run = lab.playbook("--check")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    html_path = os.path.join(lab.reports, "latest", "report.html")
    assert os.path.isfile(html_path), "the audit wrote no reports/latest/report.html"
    url = "file://" + os.path.abspath(html_path)
    profile = str(tmp_path / "chromium-profile")

    dom = _run_chromium(chromium, profile, "--dump-dom", url).stdout
    page = _Page()
    page.feed(dom)
    page.close()

    # the overview table: one row per link, with its id, its status and its finding codes
    header, *rows = page.overview_rows
    columns = [c["text"].strip().lower() for c in header]
    link_col, status_col, findings_col = columns.index("link"), columns.index("status"), columns.index("findings")
    (row,) = [r for r in rows if r[link_col]["text"].strip() == "EXIN<->EXOUT"]
    assert row[status_col]["text"].strip() == "error"
    assert "error" in row[status_col]["class"].split(), "the status cell does not carry its severity colour"
    assert "XCON-TRANSPARENCY-REFUSAL" in row[findings_col]["text"]

    # overview first, details after
    ids = [value for kind, value in page.order if kind == "id"]
    assert "overview-table" in ids and "details" in ids, ids
    assert ids.index("overview-table") < ids.index("details")
    assert ids.index("details") < ids.index("link-1"), "the link's details do not follow the details heading"
    headings = [value for kind, value in page.order if kind in ("h2", "h3")]
    assert headings.index("Overview") < headings.index("Details")
    assert any(h.startswith("EXIN<->EXOUT") for h in headings[headings.index("Details"):])

    # a screenshot for people (kept under artifacts/, gitignored)
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "report.png")
    if os.path.exists(shot):
        os.unlink(shot)
    _run_chromium(chromium, profile, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", url)
    assert os.path.isfile(shot), "chromium wrote no screenshot"
    width, height = _png_size(shot)
    assert (width, height) == (1280, 2000), (width, height)
    assert os.path.getsize(shot) > 20_000, f"the screenshot is suspiciously small ({os.path.getsize(shot)} bytes)"
