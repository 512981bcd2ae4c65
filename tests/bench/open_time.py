"""How long a report takes to open in a browser (tests/bench/bench.py, `sizes[N].report_open_ms`).

Headless Chromium opens a copy of the report with a probe at the end of its body: the probe forces
the page's layout (every table, picture and timeline placed) and records `performance.now()`, the
milliseconds since the navigation started - parsing, style and layout of the whole report, the work
an operator waits for before the page can be scrolled.  Median of `--repeat` openings, each with a
fresh browser profile.  Without Chromium it says so and measures nothing (the bench records None).

    .venv/bin/python tests/bench/open_time.py REPORT.html [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900"]
# The report has no script of its own (its fleet filter is CSS): the probe is the page's only one.
PROBE = ("<script>var h = document.documentElement.scrollHeight + document.documentElement.scrollWidth;"
         "document.body.setAttribute('data-open-ms', String(performance.now()));</script></body>")


def chromium():
    """Chromium's path, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def open_ms(html_path, repeat=3, browser=None):
    """Median milliseconds to open `html_path` (None without Chromium)."""
    browser = browser or chromium()
    if browser is None:
        return None
    scratch = tempfile.mkdtemp(prefix="xcon-open-")
    try:
        with open(html_path, encoding="utf-8") as handle:
            page = handle.read()
        if "</body>" not in page:
            raise ValueError(f"{html_path} has no </body>")
        probe = os.path.join(scratch, "probe.html")
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write(page.replace("</body>", PROBE, 1))
        times = []
        for index in range(max(1, repeat)):
            proc = subprocess.run([browser, *FLAGS, f"--user-data-dir={os.path.join(scratch, f'profile-{index}')}", "--dump-dom",
                                   "file://" + probe], capture_output=True, text=True, timeout=300, check=False)
            found = re.search(r'data-open-ms="([0-9.]+)"', proc.stdout)
            if proc.returncode != 0 or not found:
                raise RuntimeError(f"chromium could not open {html_path} (rc {proc.returncode}): {proc.stderr[-2000:]}")
            times.append(float(found.group(1)))
        return round(statistics.median(times), 1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("report")
    parser.add_argument("--repeat", type=int, default=3)
    cli = parser.parse_args(argv)
    value = open_ms(cli.report, cli.repeat)
    print(json.dumps({"report": cli.report, "open_ms": value, "bytes": os.path.getsize(cli.report),
                      "chromium": chromium()}))
    return 0 if value is not None else 1


if __name__ == "__main__":
    sys.exit(main())
