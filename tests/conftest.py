"""Make the project's Python packages importable from every test."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("module_utils", os.path.join("tests", "lab")):
    path = os.path.join(ROOT, sub)
    if path not in sys.path:
        sys.path.insert(0, path)

# Every report.json the suite writes is validated against the shipped schema before it is written
# (xcon.report.write_report reads this variable; ansible-playbook runs of the tests inherit it), so a
# report that drifts from docs/contracts/report.schema.json fails the run, and the test, that wrote it.
REPORT_SCHEMA = os.path.join(ROOT, "docs", "contracts", "report.schema.json")
os.environ["XCON_REPORT_SCHEMA"] = REPORT_SCHEMA
