"""Issue 18, defect 7: the runner's JSON reader/writer (files/ps/lib_json.ps1) and the lab's twin of
it (tests/lab/xconlab_lab/psjson.py) agree, and the controller never sends what the reader cannot
read. No PowerShell runs here, so what the script does is read from its parse tree: which .NET
dictionary its objects are (and so whether names keep their case), whether the reader recurses
(PowerShell 2.0 stops at call depth 100), what it does with a number beyond Double, how the writer
escapes CR/LF; each fact must be the one the twin declares and plays."""
from __future__ import annotations

import math
import os
import re

import pytest

from ps2_checker import parse, walk
from xcon import ops
from xconlab_lab import psjson

LIB = os.path.join(ops.OPS_DIR, "lib_json.ps1")


def functions(source: bytes) -> dict:
    """{function name: its text} of a script."""
    out = {}
    for node in walk(parse(source)):
        if node.type == "function_statement":
            name = next(c for c in node.children if c.type == "function_name").text.decode()
            out[name] = node.text.decode()
    return out


def calls(funcs: dict) -> dict:
    """{function: the script's functions its body names} (a call graph; its own name: recursion)."""
    graph = {}
    for name, text in funcs.items():
        body = text.split(name, 1)[1]
        graph[name] = {other for other in funcs if re.search(r"(?<![\w-])" + re.escape(other) + r"\b", body)}
    return graph


def reader(funcs: dict) -> set:
    """The functions ConvertFrom-XconJson reaches."""
    graph, seen, todo = calls(funcs), set(), ["ConvertFrom-XconJson"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def facts(source: bytes) -> dict:
    """What the script's JSON code does, read from its text."""
    funcs = functions(source)
    names = reader(funcs)
    text = "\n".join(funcs[n] for n in names)
    graph = calls(funcs)
    recursive = any(n in _reachable(graph, n) for n in names)
    if re.search(r"=\s*@\{\s*\}", text) or "OrdinalIgnoreCase" in text:
        comparer = "ignore-case"          # PowerShell's @{} (and OrdinalIgnoreCase) fold names
    elif re.search(r"Hashtable", text) and "[StringComparer]::Ordinal)" in text:
        comparer = "ordinal"
    else:
        comparer = "unknown"
    if "[double]::TryParse" in text and "PositiveInfinity" in text:
        overflow = "infinity"
    else:
        overflow = "throws"               # Double.Parse: OverflowException on .NET 2.0
    writer = funcs.get("Write-XconJsonString", "")
    replace = all(re.search(r"\.Replace\(\"`%s\"" % ch, writer) for ch in "rn")
    return {"comparer": comparer, "max_depth": 100 if recursive else None, "overflow": overflow,
            "crlf": "replace" if replace else "per-character"}


def _reachable(graph, start):
    seen, todo = set(), list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def script_facts():
    with open(LIB, "rb") as handle:
        return facts(handle.read())


def test_the_twin_plays_what_the_script_does():
    assert script_facts() == {"comparer": psjson.KEY_COMPARER, "max_depth": psjson.MAX_DEPTH,
                              "overflow": psjson.NUMBER_OVERFLOW, "crlf": "replace"}


def test_facts_are_read_from_the_script_not_assumed():
    # The same reading of the reader as it was before issue 18 (an @{} object, a recursive reader,
    # Double.Parse, a character loop for CR/LF): every fact comes out the other way.
    old = b'''function ConvertFrom-XconJson([string]$Text) { $state = @{ Text = $Text; Pos = 0 }; return ,(Read-XconJsonValue $state) }
function Read-XconJsonValue($S) {
    if ($c -ceq '{') { $map = @{}; $map[$key] = Read-XconJsonValue $S; return $map }
    return [double]::Parse($m.Value, [Globalization.NumberStyles]::Float, $culture)
}
function Write-XconJsonString([System.Text.StringBuilder]$Out, [string]$Text) {
    foreach ($ch in $Text.ToCharArray()) { [void]$Out.Append($ch) }
}'''
    assert facts(old) == {"comparer": "ignore-case", "max_depth": 100, "overflow": "throws", "crlf": "per-character"}


@pytest.mark.parametrize("text,expected", [
    ('{"cn": "display", "CN": "other"}', {"cn": "display", "CN": "other"}),
    ('{"a": 1, "a": 2}', {"a": 2}),
    ('[1, 2147483648, 9223372036854775808]', [1, 2147483648, 9.223372036854776e18]),
])
def test_twin_reads_like_dotnet(text, expected):
    assert psjson.read(text) == expected


def test_twin_reads_deep_nesting_and_huge_numbers():
    deep = "[" * 500 + "1" + "]" * 500
    value = psjson.read(deep)
    for _ in range(500):
        value = value[0]
    assert value == 1
    assert psjson.read("[1e400, -1e400]") == [math.inf, -math.inf]
    with pytest.raises(ValueError):
        psjson.read("[NaN]")


def test_the_controller_never_sends_what_the_script_cannot_read():
    with pytest.raises(ValueError, match="finite"):
        ops.build_payload([{"op": "dir_search", "params": {"server": "X", "limit": float("inf")}}])
    with pytest.raises(ValueError, match="64-bit"):
        ops.build_payload([{"op": "dir_search", "params": {"server": "X", "n": 10 ** 30}}])
    command, stdin = ops.build_payload([{"op": "dir_search", "params": {"server": "X", "deep": [[[[1]]]]}}])
    request = stdin.decode("ascii").split(ops.SEPARATOR)[-1]
    assert psjson.read(request)["ops"][0]["params"]["deep"] == [[[[1]]]]


@pytest.mark.parametrize("op,params", [
    ("dir_modify", {"server": "EXIN", "dn": "cn=A,o=O", "changes": [
        {"attribute": "Activation-Style", "action": "replace", "values": [2]},
        {"attribute": "activation-style", "action": "replace", "values": [0]}]}),
    ("dir_create", {"server": "EXIN", "parent": "cn=Connections,o=O", "cn": "A", "class": "X",
                    "attributes": {"cn": "one", "CN": "two"}}),
    ("dir_modify", {"server": "EXIN", "dn": "", "changes": []}),
    ("dir_delete", {"server": "EXIN", "dn": "  "}),
    ("dir_create", {"server": "EXIN", "parent": "", "cn": "A", "class": "X", "attributes": {}}),
])
def test_writes_the_host_would_get_wrong_are_refused_before_sending(op, params):
    with pytest.raises(ValueError):
        ops.build_request([{"op": op, "params": params}])
