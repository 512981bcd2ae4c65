"""Every Exchange-version fact is read from the profile (issue 14): outside module_utils/xcon/profile.py
(and the lab), no code in module_utils/, action_plugins/ or roles/ names a directory attribute, object
class, service or event source of any profile as a literal value.  Documentation and messages for
people may name them: only a string constant (Python) or a YAML scalar that *is* such a name counts,
never a longer text that mentions one.  Costs well under a second."""

from __future__ import annotations

import ast
import os

import yaml

from xcon import profile as xprofile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCANNED = ("module_utils", "action_plugins", "roles")
PROFILE_FILE = os.path.join("module_utils", "xcon", "profile.py")
# LDAP's own naming attribute is also the name of the runner's dir_create parameter ({"cn": ...}).
GENERIC = {"cn"}


def exchange_literals():
    names = set()
    for profile in xprofile.PROFILES.values():
        names.update(entry["name"] for entry in profile["attributes"].values())
        names.update(profile["other_page_attributes"])
        names.update(profile["object_classes"])
        names.update({profile["object_class"], profile["service"], profile["event_source"],
                      profile["assumptions"]["rights_attribute"]})
    return {n.lower() for n in names} - GENERIC


def _python_constants(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def _yaml_scalars(data):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _yaml_scalars(key)
            yield from _yaml_scalars(value)
    elif isinstance(data, list):
        for item in data:
            yield from _yaml_scalars(item)
    elif isinstance(data, str):
        yield data


def literal_uses(root=ROOT):
    wanted = exchange_literals()
    found = []
    for top in SCANNED:
        for base, dirs, names in os.walk(os.path.join(root, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                path = os.path.join(base, name)
                rel = os.path.relpath(path, root)
                if rel == PROFILE_FILE:
                    continue
                if name.endswith(".py"):
                    found += [f"{rel}:{line}: {value!r}" for line, value in _python_constants(path)
                              if value.strip().lower() in wanted]
                elif name.endswith((".yml", ".yaml")):
                    data = yaml.safe_load(open(path, encoding="utf-8"))
                    found += [f"{rel}: {value!r}" for value in _yaml_scalars(data) if value.strip().lower() in wanted]
    return found


def test_the_scan_knows_the_profile_names():
    wanted = exchange_literals()
    assert {"home-mta", "activation-style", "n-address", "msexchangemta", "rfc1006-x400-link", "rdn",
            "allowedattributeseffective"} <= wanted


def test_the_scan_finds_a_literal(tmp_path):
    (tmp_path / "module_utils").mkdir()
    (tmp_path / "module_utils" / "bad.py").write_text('"""Home-MTA in a docstring is fine."""\nX = {"Home-MTA": 1}\nY = f"no {X}"\n')
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles" / "defaults.yml").write_text("svc: MSExchangeMTA\nmsg: restart MSExchangeMTA now\n")
    assert literal_uses(str(tmp_path)) == ["module_utils/bad.py:2: 'Home-MTA'", "roles/defaults.yml: 'MSExchangeMTA'"]


def test_no_exchange_literal_outside_the_profile():
    assert literal_uses() == []
