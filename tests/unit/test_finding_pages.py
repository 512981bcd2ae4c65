"""Every finding or error code the toolkit can emit has its page in docs/findings/<CODE>.md.

The codes are found by scanning the code itself (modules, module_utils, action plugins, roles,
playbooks, PowerShell scripts) for ``XCON-`` literals, so a code added anywhere without a page fails
here; a page without a code is reported too (a renamed code leaves a stale page behind).
"""

from __future__ import annotations

import os
import re

from conftest import ROOT

CODE = re.compile(r"XCON-[A-Z0-9]+(?:-[A-Z0-9]+)*")
SCANNED = ("module_utils", "library", "action_plugins", "roles", "playbooks", "files", "fix-xcon.yml")
SUFFIXES = (".py", ".yml", ".yaml", ".ps1", ".j2", ".psm1")
FINDINGS = os.path.join(ROOT, "docs", "findings")


def emitted_codes():
    found = {}
    for entry in SCANNED:
        path = os.path.join(ROOT, entry)
        files = [path] if os.path.isfile(path) else [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        for name in files:
            if not name.endswith(SUFFIXES):
                continue
            with open(name, encoding="utf-8", errors="replace") as handle:
                for code in CODE.findall(handle.read()):
                    found.setdefault(code, os.path.relpath(name, ROOT))
    return found


def test_scanner_sees_the_known_codes():
    codes = emitted_codes()
    assert {"XCON-TRANSPARENCY-REFUSAL", "XCON-UNREACHABLE", "XCON-OPERATION-FAILED"} <= set(codes), sorted(codes)


def test_every_emitted_code_has_a_page():
    missing = {code: where for code, where in emitted_codes().items()
               if not os.path.isfile(os.path.join(FINDINGS, code + ".md"))}
    assert not missing, ("codes without a page in docs/findings/ (write docs/findings/<CODE>.md: severity, what is "
                         f"tested, when raised, evidence, what to do): {missing}")


def test_every_page_names_its_code_and_what_to_do():
    codes = emitted_codes()
    for name in sorted(os.listdir(FINDINGS)):
        if not name.endswith(".md"):
            continue
        code = name[:-3]
        with open(os.path.join(FINDINGS, name), encoding="utf-8") as handle:
            text = handle.read()
        assert text.startswith(f"# {code}\n"), f"{name} does not start with its code as title"
        assert "## What to do" in text, f"{name} has no 'What to do' section"
        assert code in codes, f"{name} documents a code that nothing emits any more"
