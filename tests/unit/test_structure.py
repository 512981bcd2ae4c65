"""Structure rules of issue 14 (cheap static scans, well under a second):

- no source file over 400 lines in module_utils/, action_plugins/, library/, roles/, files/ps/ (the
  PowerShell sent to Windows), nor in the lab (tests/lab/; its WS-Management server, wsman.py, is
  exempt), nor any .py file under tests/ (the tests themselves: split by topic, shared helpers in a
  helper module or a conftest fixture);
- no module-level function or method in module_utils/ that nothing in the repository names outside
  its own definition (dead code and the tests that exercised only a dead copy go together);
- no two test modules with one file name: the test directories are not packages, so pytest imports
  both as one module and the whole suite stops at collection ("import file mismatch").
"""

from __future__ import annotations

import ast
import os
import re
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE_DIRS = ("module_utils", "action_plugins", "library", "roles", os.path.join("files", "ps"))
LAB_DIR = os.path.join("tests", "lab")
LAB_EXEMPT = (os.path.join(LAB_DIR, "xconlab_lab", "wsman.py"),)   # the WS-Management server
TESTS_DIR = "tests"
SOURCE_EXT = (".py", ".yml", ".yaml", ".j2", ".ps1", ".sh")
MAX_LINES = 400
PRODUCTION = ("module_utils", "action_plugins", "library", "roles", "playbooks", "callback_plugins")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEF = re.compile(r"\bdef\s+([A-Za-z_][A-Za-z0-9_]*)")

# Called by a framework, not by name in this repository.
ENTRY_POINTS = {
    "run", "xcon_run",  # Ansible ActionBase.run / XconAction's hook
    "main",
}


def _files(top, exts):
    for base, dirs, names in os.walk(os.path.join(ROOT, top)):
        dirs[:] = [d for d in dirs if d not in ("__pycache__", ".venv", ".xconlab", ".git")]
        for name in names:
            if name.endswith(exts):
                yield os.path.join(base, name)


def _over_limit(top, exts):
    """'path: N lines' of every file under `top` with these endings over MAX_LINES, the lab's exemption aside."""
    long = []
    for path in _files(top, exts):
        if os.path.relpath(path, ROOT) in LAB_EXEMPT:
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = sum(1 for _ in handle)
        if lines > MAX_LINES:
            long.append(f"{os.path.relpath(path, ROOT)}: {lines} lines")
    return long


def test_no_source_file_over_400_lines():
    long = [entry for top in SIZE_DIRS for entry in _over_limit(top, SOURCE_EXT)]
    assert long == [], "split these by concern: " + "; ".join(long)


def test_no_lab_or_test_file_over_400_lines():
    """The lab's sources, and every .py under tests/: test modules, their helpers and conftests."""
    long = sorted(set(_over_limit(LAB_DIR, SOURCE_EXT)) | set(_over_limit(TESTS_DIR, (".py",))))
    assert long == [], "split these by concern: " + "; ".join(long)


def test_test_module_names_are_unique():
    seen = {}
    for path in _files(TESTS_DIR, (".py",)):
        name = os.path.basename(path)
        if name.startswith("test_"):
            seen.setdefault(name, []).append(os.path.relpath(path, ROOT))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert clashes == {}, f"rename one of each: {clashes}"


def _definitions(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("__"):
                    yield item.name


def _names(tops):
    """How often each identifier occurs, and how often it is defined (def NAME), in these directories."""
    uses, defs = Counter(), Counter()
    for top in tops:
        if os.path.isdir(os.path.join(ROOT, top)):
            for path in _files(top, (".py", ".yml", ".yaml", ".j2")):
                text = open(path, encoding="utf-8", errors="replace").read()
                uses.update(IDENT.findall(text))
                defs.update(DEF.findall(text))
    return uses, defs


def test_no_unused_function_in_module_utils():
    """Used means named by production code (module_utils, plugins, library, roles, playbooks): a
    function only the tests call is a dead copy of something the toolkit does elsewhere."""
    uses, defs = _names(PRODUCTION)
    unused = []
    for path in _files("module_utils", (".py",)):
        for name in set(_definitions(path)):
            if name not in ENTRY_POINTS and uses[name] - defs[name] < 1:
                unused.append(f"{os.path.relpath(path, ROOT)}: {name}")
    assert sorted(unused) == [], "remove the dead code (and point its tests at the live code): " + "; ".join(sorted(unused))
