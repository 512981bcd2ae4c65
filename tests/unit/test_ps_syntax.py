"""Every shipped PowerShell script parses (tree-sitter-powershell) and avoids post-2.0 features."""
import glob
import os
import re

import pytest

from ps2_checker import RULES, findings, syntax_errors
from xcon import ops

SCRIPTS = sorted(glob.glob(os.path.join(ops.OPS_DIR, "*.ps1")))


def test_all_scripts_present():
    names = {os.path.basename(p) for p in SCRIPTS}
    expected = {"bootstrap.ps1", "runner.ps1", "lib_json.ps1"} | {f"op_{n}.ps1" for n in (
        "dir_search", "dir_modify", "dir_create", "dir_delete", "event_query", "perf_counters", "service", "tcp_probe")}
    assert expected <= names


@pytest.mark.parametrize("path", SCRIPTS, ids=os.path.basename)
def test_script_parses(path):
    assert syntax_errors(open(path, "rb").read()) == []


def test_checker_detects_broken_powershell():
    assert syntax_errors(b"function Broken( {\n  $x = @{ a = \n")
    assert syntax_errors(b"if ($x -eq 1 { 'unclosed' ")


@pytest.mark.parametrize("path", SCRIPTS, ids=os.path.basename)
def test_ps2_compatible(path):
    # Every rule of the PowerShell 2.0 checker (tests/unit/ps2_checker.py) over every shipped script.
    with open(path, "rb") as handle:
        assert findings(handle.read(), os.path.basename(path)) == []


def test_rule_table_covers_the_2_0_checklist():
    ids = [r.id for r in RULES]
    assert len(set(ids)) == len(ids)
    assert {r.kind for r in RULES} == {"code", "csharp", "tree"} and len(RULES) >= 30


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_each_rule_has_a_failing_example(rule):
    name = rule.scope[0] if rule.scope else "example.ps1"
    assert rule.id in {hit[0] for hit in findings(rule.example.encode(), name)}, rule.example


@pytest.mark.parametrize("source", [
    "# ConvertTo-Json, [ordered], $x -eq $null in a comment\n$m = 'ConvertTo-Json -in a message'",
    "$h = @{}\nforeach ($k in $h.PSBase.Keys) { }\nif ($null -eq $x) { }",
    "function F { $l = New-Object System.Collections.ArrayList\n [void]$l.Add(1)\n return ,$l.ToArray() }",
    "$t = [string]::Join(',', [string[]]$list.ToArray())",
])
def test_rules_spare_the_2_0_forms(source):
    # What a rule must not flag: text in comments and strings, and the 2.0-safe way of each pitfall.
    assert findings(source.encode(), "runner.ps1") == []


@pytest.mark.parametrize("path", SCRIPTS, ids=os.path.basename)
def test_ascii_and_op_header(path):
    text = open(path, "rb").read()
    text.decode("ascii")  # no code-page surprises on the wire
    name = os.path.basename(path)
    if name.startswith("op_"):
        assert text.decode().splitlines()[0] == f"# xcon-op: {name[3:-4]}"
    if name.startswith("lib_"):
        assert text.decode().splitlines()[0] == f"# xcon-lib: {name[4:-4]}"


@pytest.mark.parametrize("path", SCRIPTS, ids=os.path.basename)
def test_script_is_ascii(path):
    # Everything on the wire is ASCII, whatever the shell's code page (no reliance on 65001).
    with open(path, "rb") as handle:
        assert handle.read().isascii()


@pytest.mark.parametrize("name", ["runner.ps1", "lib_json.ps1"])
def test_runner_needs_no_dotnet35(name):
    # Windows PowerShell 2.0 needs only .NET 2.0: no JavaScriptSerializer (System.Web.Extensions).
    with open(os.path.join(ops.OPS_DIR, name), encoding="ascii") as handle:
        code = "\n".join(line for line in handle.read().splitlines() if not line.lstrip().startswith("#"))
    assert "System.Web.Extensions" not in code and "JavaScriptSerializer" not in code
    assert "function " in code


@pytest.mark.parametrize("path", SCRIPTS, ids=os.path.basename)
def test_no_secret_goes_onto_a_command_line(path):
    # A password passed to an external program (net.exe use \\S\IPC$ PASSWORD, runas, ...) is
    # visible to anyone who lists the host's processes; the target credentials go to APIs only.
    text = open(path, encoding="utf-8").read()
    for line in text.splitlines():
        if re.search(r"&\s*\S+\.exe\b", line, re.I):
            assert not re.search(r"password", line, re.I), f"{os.path.basename(path)}: {line.strip()}"
