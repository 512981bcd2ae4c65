"""Both sides of the script <-> lab-twin contract, read from source (test_script_contract.py).

The script side comes from files/ps with tree-sitter-powershell: the request parameters an op reads
(`Get-XconParam $Params 'NAME'`, `Get-XconLdapServer $Params` = server and port), the fields it
returns (the keys of the hashtables its script-level `return @{...}` statements build) and the error
categories it raises itself (`New-XconError 'Category'`, or a variable assigned literal categories,
in the op or in the runner functions it calls, transitively).

The twin side comes from tests/lab/xconlab_lab with Python's ast: from `_op_<name>` and the helpers
it calls (`self.X(...)`, module functions, and methods called on its directory / service manager /
server), the parameters it reads (`self._param(params, "NAME")`, `params.get("NAME")`,
`params["NAME"]`), the keys of the dicts it returns (following a returned helper call), and the
categories it raises (`_op_error`, `OpError`, `win32_error`, `DirectoryError`, `ServiceError`).
"""
from __future__ import annotations

import ast
import glob
import os
import re
from typing import Dict, Set

from ps2_checker import parse, walk

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PS_DIR = os.path.join(ROOT, "files", "ps")
LAB_DIR = os.path.join(ROOT, "tests", "lab", "xconlab_lab")
RUNNER_PARAMS = {"target_user", "target_password"}          # read by the runner for every op
RAISERS = {"_op_error", "OpError", "win32_error", "DirectoryError", "ServiceError"}
FOLLOWED_OBJECTS = {"self", "directory", "scm", "server", "schema", "dn"}


# -- the script ---------------------------------------------------------------------------------
def ps_functions(source: bytes) -> Dict[str, str]:
    out = {}
    for node in walk(parse(source)):
        if node.type == "function_statement":
            out[next(c for c in node.children if c.type == "function_name").text.decode()] = node.text.decode()
    return out


def _explicit_categories(text: str) -> Set[str]:
    found = set(re.findall(r"New-XconError\s+'(\w+)'", text))
    for variable in re.findall(r"New-XconError\s+\$(\w+)", text):
        found |= set(re.findall(r"\$" + variable + r"\s*=\s*'(\w+)'", text))
    return found


def _keys_set(text: str, variable: str) -> Set[str]:
    """Keys a script sets on a hashtable it builds: $v['key'] = ..., and $v[$n] = ... inside
    foreach ($n in 'a', 'b') { }."""
    keys = set(re.findall(r"\$" + variable + r"\[['\"](\w+)['\"]\]\s*=", text))
    for loop, names, body in re.findall(r"foreach\s*\(\$(\w+)\s+in\s+((?:'\w+'\s*,?\s*)+)\)\s*\{(.*?)\n\}", text, re.S):
        if re.search(r"\$" + variable + r"\[\$" + loop + r"\]\s*=", body):
            keys |= set(re.findall(r"'(\w+)'", names))
    return keys


def _calls(text: str, names) -> Set[str]:
    return {n for n in names if re.search(r"(?<![\w-])" + re.escape(n) + r"\b", text)}


def script_side(op_source: bytes, runner_source: bytes) -> dict:
    """{"params", "fields", "categories"} of one op script (with the runner's helpers)."""
    text = op_source.decode()
    params = set(re.findall(r"Get-XconParam\s+\$Params\s+'([^']+)'", text, re.I))
    if re.search(r"Get-XconLdapServer\s+\$Params", text, re.I):
        params |= {"server", "port"}
    fields: Set[str] = set()
    root = parse(op_source)
    for node in walk(root):
        if node.type != "flow_control_statement" or node.children[0].type != "return":
            continue
        parent, inside_function = node.parent, False
        while parent is not None:
            inside_function |= parent.type == "function_statement"
            parent = parent.parent
        literal = next((n for n in walk(node) if n.type == "hash_literal_expression"), None)
        returned = re.fullmatch(r"return\s+,?\$(\w+)", node.text.decode().strip())
        if not inside_function and literal is None and returned:
            fields |= _keys_set(text, returned.group(1))
        if inside_function or literal is None:
            continue
        body = next((c for c in literal.children if c.type == "hash_literal_body"), None)
        for entry in body.children if body is not None else []:
            if entry.type == "hash_entry":
                fields.add(entry.children[0].text.decode().strip())
    helpers = ps_functions(runner_source)
    categories = _explicit_categories(text)
    seen, todo = set(), list(_calls(text, helpers))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name == "Get-XconParam" and "-Required" not in text:
            continue                                    # it raises only for a required parameter
        categories |= _explicit_categories(helpers[name])
        todo.extend(_calls(helpers[name].split(name, 1)[1], helpers))
    return {"params": params, "fields": fields, "categories": categories}


def script_sides() -> Dict[str, dict]:
    with open(os.path.join(PS_DIR, "runner.ps1"), "rb") as handle:
        runner = handle.read()
    out = {}
    for path in sorted(glob.glob(os.path.join(PS_DIR, "op_*.ps1"))):
        with open(path, "rb") as handle:
            out[os.path.basename(path)[3:-4]] = script_side(handle.read(), runner)
    return out


# -- the twin -----------------------------------------------------------------------------------
def _lab_sources() -> Dict[str, str]:
    sources = {}
    for path in sorted(glob.glob(os.path.join(LAB_DIR, "*.py"))):
        with open(path, encoding="utf-8") as handle:
            sources[path] = handle.read()
    return sources


def twin_definitions(sources: Dict[str, str] = None) -> Dict[str, ast.AST]:
    """Every function and method of the lab package by name (the first of a name wins), and under
    the key ``None`` the module-level tuples of names (``WRITE_OPS``...) the op guards test."""
    defs: Dict[str, ast.AST] = {None: {}}
    for text in (sources or _lab_sources()).values():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs.setdefault(node.name, node)
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and isinstance(node.value, (ast.Tuple, ast.List, ast.Set))):
                names = [_string(e) for e in node.value.elts]
                if all(names):
                    defs[None][node.targets[0].id] = set(names)
    return defs


def _callee(call: ast.Call):
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in FOLLOWED_OBJECTS:
        return func.attr
    return None


def _string(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _guard(test, op: str, constants) -> bool:
    """False when `test` says the branch is not for `op` (op == "x", op in NAMES, ... and ...)."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return all(_guard(value, op, constants) for value in test.values)
    if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "op"
            and len(test.ops) == 1):
        right = test.comparators[0]
        values = {_string(right)} if _string(right) else constants.get(getattr(right, "id", None))
        if isinstance(right, (ast.Tuple, ast.List, ast.Set)):
            values = {_string(e) for e in right.elts}
        if values is None:
            return True
        kind = type(test.ops[0])
        if kind in (ast.Eq, ast.In):
            return op in values
        if kind in (ast.NotEq, ast.NotIn):
            return op not in values
    return True


def _nodes(node, op, constants):
    """The nodes of a function an `op` can run (branches guarded against it left out)."""
    yield node
    if isinstance(node, ast.If) and not _guard(node.test, op, constants):
        children = node.orelse
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _nodes(child, op, constants)


def twin_side(op: str, defs: Dict[str, ast.AST]) -> dict:
    start, constants = defs[f"_op_{op}"], defs[None]
    params, categories, fields = set(), set(), set()
    seen, todo = set(), [start]
    while todo:
        function = todo.pop()
        if function.name in seen:
            continue
        seen.add(function.name)
        for node in _nodes(function, op, constants):
            if isinstance(node, ast.Call):
                name = _callee(node)
                if name == "_param" and len(node.args) >= 2 and _string(node.args[1]):
                    params.add(_string(node.args[1]))
                if (isinstance(node.func, ast.Attribute) and node.func.attr == "get" and isinstance(node.func.value, ast.Name)
                        and node.func.value.id == "params" and node.args and _string(node.args[0])):
                    params.add(_string(node.args[0]))
                if name in RAISERS and node.args and _string(node.args[0]):
                    categories.add(_string(node.args[0]))
                if name and name in defs and name not in RAISERS:
                    todo.append(defs[name])
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "params"
                    and _string(node.slice)):
                params.add(_string(node.slice))
    returned = [start]
    while returned:
        function = returned.pop()
        for node in _nodes(function, op, constants):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
                fields |= {_string(k) for k in node.value.keys if _string(k)}
            elif isinstance(node, ast.Return) and isinstance(node.value, ast.Call) and _callee(node.value) and _callee(node.value) in defs:
                returned.append(defs[_callee(node.value)])
    return {"params": params - RUNNER_PARAMS, "fields": fields, "categories": categories}
