"""A static Windows PowerShell 2.0 checker for files/ps (tree-sitter-powershell), rules as a table
(ps2_rules.yml: version compatibility as data).

The shape is PSScriptAnalyzer's UseCompatibleSyntax / UseCompatibleCommands: what a PowerShell
version (and the .NET Framework 2.0 it runs on) has is data, checked statically. Each rule names what
it finds, since when it exists (or why it is a pitfall on 2.0), how it is found, and an example that
must trip it (test_ps_syntax.py runs every example). Sources: about_Language_Keywords and the
"What's new" pages of Windows PowerShell 3.0 / 4.0 / 5.0, the .NET Framework class library's
"Version Information" sections (members marked "Available since 4.0" are absent on 2.0), the C#
language specification 3.0 (var, lambdas, auto-properties, object initialisers, query expressions are
C# 3.0; PowerShell 2.0's Add-Type compiles C# 2.0 with the .NET 2.0 compiler), and
about_Return ("return $array" unrolls the array into the pipeline).

How a rule looks at a script:
* ``code``: a regular expression over the script's *code*: comments and the literal text of
  strings are blanked first (a message that says "ConvertTo-Json" is not a call), the
  ``$(...)`` parts of expandable strings stay;
* ``csharp``: a regular expression over the C# source handed to ``Add-Type -TypeDefinition``
  (the here-string itself, or the variable it was assigned to);
* ``tree``: a function over the parse tree (pitfalls that need structure).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, List, Optional

import tree_sitter
import tree_sitter_powershell
import yaml

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
COMPARISONS = re.compile(r"^-[ic]?(eq|ne|gt|ge|lt|le|like|notlike|match|notmatch|contains|notcontains)$", re.I)
# Script-level files whose bare output reaches stdout beside the JSON answer.
SCRIPT_LEVEL = ("bootstrap.ps1", "runner.ps1", "lib_json.ps1")
# .NET methods that return a value PowerShell would emit when the call is a statement of its own.
VALUE_METHODS = ("Add", "Append", "AppendFormat", "AppendLine")
# .NET methods returning nothing (void): a statement calling one writes nothing.
VOID_METHODS = ("Write", "WriteLine", "Flush", "Dispose", "Close", "SetInfo", "RefreshCache", "CommitChanges",
                "Reverse", "Sort", "Start", "Stop", "Refresh", "WaitForStatus", "Put", "PutEx", "Clear")
# Statements whose bodies run where they stand (a script-level if's body is script level too).
CONTROL = ("if_statement", "elseif_clauses", "elseif_clause", "else_clause", "foreach_statement", "for_statement",
           "while_statement", "do_statement", "try_statement", "catch_clauses", "catch_clause", "finally_clause",
           "switch_statement", "switch_body", "switch_clauses", "switch_clause", "statement_block")


@dataclass(frozen=True)
class Rule:
    id: str
    what: str
    why: str
    example: str
    kind: str = "code"          # code | csharp | tree
    pattern: Optional[str] = None
    check: Optional[Callable] = None
    scope: tuple = ()           # file names it applies to (empty: every script)


# -- parsing helpers ----------------------------------------------------------------------------
def parse(source: bytes):
    return PARSER.parse(source).root_node


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


def syntax_errors(source: bytes) -> List[str]:
    return [f"{n.type} at {n.start_point}: {n.text[:60]!r}" for n in walk(parse(source)) if n.is_error or n.is_missing]


def code_text(source: bytes) -> str:
    """The script with comments and literal string text blanked (same offsets, newlines kept)."""
    out = bytearray(source)

    def blank(start, end):
        for i in range(start, end):
            if out[i] not in (10, 13):
                out[i] = 32

    for node in walk(parse(source)):
        if node.type == "comment" or node.type in ("verbatim_string_characters", "verbatim_here_string_characters"):
            blank(node.start_byte, node.end_byte)
        elif node.type in ("expandable_string_literal", "expandable_here_string_literal"):
            kept = [(c.start_byte, c.end_byte) for c in node.children if c.type not in ('"', "@\"", "\"@")]
            position = node.start_byte
            for start, end in kept:
                blank(position, start)
                position = end
            blank(position, node.end_byte)
    return out.decode("ascii", errors="replace")


def add_type_sources(source: bytes) -> List[str]:
    """The C# texts given to Add-Type -TypeDefinition (inline strings, or a variable's string)."""
    root = parse(source)
    assigned = {}
    for node in walk(root):
        if node.type == "assignment_expression" and node.children:
            name = node.children[0].text.decode().strip().lower()
            strings = [n for n in walk(node.children[-1]) if n.type == "string_literal"]
            if strings:
                assigned[name] = strings[0].text.decode("ascii", errors="replace")
    found = []
    for node in walk(root):
        if node.type != "command" or not node.children or node.children[0].text.decode().lower() != "add-type":
            continue
        words = [n for n in walk(node) if n.type in ("command_parameter", "variable", "string_literal")]
        for index, word in enumerate(words[:-1]):
            if word.type == "command_parameter" and word.text.decode().lower() == "-typedefinition":
                value = words[index + 1]
                text = assigned.get(value.text.decode().lower()) if value.type == "variable" else value.text.decode("ascii", errors="replace")
                if text:
                    found.append(text)
    return found


# -- tree rules ---------------------------------------------------------------------------------
def _null_on_the_right(root, _name):
    for node in walk(root):
        if node.type == "comparison_expression" and len(node.children) == 3:
            operator, right = node.children[1], node.children[2]
            if COMPARISONS.match(operator.text.decode().strip()) and right.text.decode().strip().lower() == "$null":
                yield node


def _function_of(node):
    while node is not None and node.type != "function_statement":
        node = node.parent
    return node


_ARRAY_VALUE = re.compile(r"^(@\(|.*\.ToArray\(\)$|New-Object\s+(System\.Collections\.ArrayList|\S+\[\])|\[[\w.]+\[\]\])", re.I | re.S)


def _return_array_unrolled(root, _name):
    for node in walk(root):
        if node.type != "flow_control_statement" or node.children[0].type != "return" or len(node.children) < 2:
            continue
        value = node.children[1].text.decode().strip()
        if value.startswith(","):
            continue
        if _ARRAY_VALUE.match(value):
            yield node
            continue
        if re.fullmatch(r"\$\w+", value):
            scope = _function_of(node) or root
            assigned = re.compile(r"(\[[\w.]+\[\]\]\s*)?" + re.escape(value) + r"\s*=\s*(.+)", re.I)
            for match in assigned.finditer(scope.text.decode()):
                if match.group(1) or _ARRAY_VALUE.match(match.group(2).strip()):
                    yield node
                    break


def _statements(block):
    """The statements of a statement list (skipping separators)."""
    for child in block.children:
        if child.type not in ("empty_statement", ";", "comment"):
            yield child


def _emits(statement) -> bool:
    """Whether a statement is a bare expression that writes to the pipeline (so, at script level,
    to stdout): not an assignment, a [void] cast, a piped Out-Null, a command (`&`, `.`, a cmdlet or
    function: what it writes is its own), a flow-control statement or a call of a void method."""
    text = statement.text.decode().strip()
    if statement.type != "pipeline" and not statement.type.endswith("expression"):
        return False
    if re.match(r"^\[void\]", text, re.I) or re.search(r"\|\s*Out-Null\s*$", text, re.I):
        return False
    first = next((n for n in walk(statement) if n.type in ("assignment_expression", "command")), None)
    if first is not None and first.start_byte == statement.start_byte:
        return False
    method = re.fullmatch(r"[\w.:$\[\]]+\.(\w+)\(.*\)", text, re.S)
    return not (method and method.group(1) in VOID_METHODS)


def _blocks(node):
    """Statement lists that run where `node` stands: bodies of if/for/foreach/while/try/...
    (not of functions, script blocks or subexpressions: they run when called or evaluated)."""
    for child in node.children:
        if child.type == "statement_list":
            yield child
        elif child.type in CONTROL:
            yield from _blocks(child)


def _bare_output(root, name):
    if name not in SCRIPT_LEVEL:
        return
    pending = [b for b in root.children if b.type == "statement_list"]
    while pending:
        block = pending.pop()
        for statement in _statements(block):
            if _emits(statement):
                yield statement
            elif statement.type in CONTROL:
                pending.extend(_blocks(statement))


def _unvoided_method(root, _name):
    for node in walk(root):
        if node.type != "statement_list":
            continue
        for statement in _statements(node):
            text = statement.text.decode().strip()
            if re.fullmatch(r"\$[\w.]+\.(%s)\(.*\)" % "|".join(VALUE_METHODS), text, re.S | re.I):
                yield statement


# -- the table (ps2_rules.yml) ---------------------------------------------------------------------
CHECKS = {"return_array_unrolled": _return_array_unrolled, "null_on_the_right": _null_on_the_right,
          "bare_output": _bare_output, "unvoided_method": _unvoided_method}


def load_rules(path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "ps2_rules.yml")):
    with open(path, encoding="utf-8") as handle:
        rows = yaml.safe_load(handle)
    return [Rule(row["id"], row["what"], row["why"], row["example"], row.get("kind", "code"), row.get("pattern"),
                 CHECKS[row["check"]] if row.get("check") else None, tuple(row.get("scope") or ()))
            for row in rows]


RULES = load_rules()


def findings(source: bytes, name: str = "script.ps1", rules=RULES):
    """[(rule id, line, text)] for every rule the script trips."""
    hits = []
    code = None
    csharp = None
    root = None
    for rule in rules:
        if rule.scope and name not in rule.scope:
            continue
        if rule.kind == "code":
            code = code if code is not None else code_text(source)
            for match in re.finditer(rule.pattern, code, re.I | re.M):
                hits.append((rule.id, code.count("\n", 0, match.start()) + 1, match.group(0).strip()))
        elif rule.kind == "csharp":
            csharp = csharp if csharp is not None else add_type_sources(source)
            for text in csharp:
                for match in re.finditer(rule.pattern, text):
                    hits.append((rule.id, 0, match.group(0).strip()))
        else:
            root = root if root is not None else parse(source)
            for node in rule.check(root, name):
                hits.append((rule.id, node.start_point[0] + 1, node.text.decode()[:60]))
    return hits
