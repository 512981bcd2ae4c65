"""The contract between each on-host op script (files/ps/op_*.ps1) and the lab's twin of it
(tests/lab/xconlab_lab: `_op_<name>` and its helpers), read from both sources (contract_model.py):
the parameters the script reads are exactly those the twin accepts, the fields it returns exactly
those the twin produces, every error category the script raises itself the twin can raise too and
reports as the script's own (handler.OWN_CATEGORIES), and every op that takes a target server goes
with the target credentials (ops.TARGET_OPS) and, for IPC$ ops, the same list on both sides. A change
to one side without the other fails: each kind of drift is shown by mutating one side below."""
from __future__ import annotations

import os
import re

import pytest

from contract_model import LAB_DIR, PS_DIR, _lab_sources, script_side, script_sides, twin_definitions, twin_side
from xcon import ops
from xconlab_lab import handler, second_hop


def disagreements(scripts, defs, own=None, target_ops=None, runner_ipc=None, lab_ipc=None):
    """Every way the scripts and the twin (and the target-credential sets) disagree, as text."""
    own = handler.OWN_CATEGORIES if own is None else own
    target_ops = set(ops.TARGET_OPS) if target_ops is None else set(target_ops)
    out = []
    for op, script in sorted(scripts.items()):
        if f"_op_{op}" not in defs:
            out.append(f"{op}: the lab has no twin (_op_{op})")
            continue
        twin = twin_side(op, defs)
        for key, what in (("params", "parameters read"), ("fields", "fields returned")):
            if script[key] != twin[key]:
                out.append(f"{op}: {what}: script only {sorted(script[key] - twin[key])}, "
                           f"twin only {sorted(twin[key] - script[key])}")
        if not script["categories"] <= twin["categories"]:
            out.append(f"{op}: the twin never raises {sorted(script['categories'] - twin['categories'])}")
        if script["categories"] != set(own.get(op, ())):
            out.append(f"{op}: the script raises {sorted(script['categories'])} itself, the twin reports "
                       f"{sorted(own.get(op, ()))} as the script's own")
        if ("server" in script["params"]) != (op in target_ops):
            out.append(f"{op}: takes a target server: {'server' in script['params']}, in TARGET_OPS: {op in target_ops}")
    if runner_ipc is None:
        with open(os.path.join(PS_DIR, "runner.ps1"), encoding="ascii") as handle:
            listed = re.search(r"if \(@\(([^)]*)\) -contains \$name\)", handle.read()).group(1)
        runner_ipc = set(re.findall(r"'(\w+)'", listed))
    lab_ipc = set(second_hop.IPC_OPS) if lab_ipc is None else set(lab_ipc)
    if set(runner_ipc) != lab_ipc:
        out.append(f"IPC$ ops: runner {sorted(runner_ipc)}, lab {sorted(lab_ipc)}")
    return out


@pytest.fixture(scope="module")
def sides():
    return script_sides(), twin_definitions()


def test_every_op_script_and_its_twin_agree(sides):
    scripts, defs = sides
    assert set(scripts) == set(ops.op_names()) and len(scripts) >= 10
    assert disagreements(scripts, defs) == []


def _script(name):
    with open(os.path.join(PS_DIR, name), "rb") as handle:
        return handle.read()


def _mutated_script(sides, op, old, new):
    scripts, _defs = sides
    source = _script(f"op_{op}.ps1").decode()
    assert old in source
    return dict(scripts, **{op: script_side(source.replace(old, new, 1).encode(), _script("runner.ps1"))})


def _mutated_twin(path_end, old, new):
    sources = _lab_sources()
    path = next(p for p in sources if p.endswith(path_end))
    assert old in sources[path]
    sources[path] = sources[path].replace(old, new, 1)
    return twin_definitions(sources)


def test_a_parameter_the_twin_does_not_read_fails(sides):
    scripts = _mutated_script(sides, "reg_read", "$names = @(Get-XconParam $Params 'names' @())",
                              "$names = @(Get-XconParam $Params 'names' @())\n$hive = Get-XconParam $Params 'hive' 'HKLM'")
    assert any("reg_read: parameters read" in d and "'hive'" in d for d in disagreements(scripts, sides[1]))


def test_a_field_the_script_does_not_return_fails(sides):
    defs = _mutated_twin("ops.py", 'return {"host": host, "port": port, "connected": connected, "error": error}',
                         'return {"host": host, "port": port, "connected": connected, "error": error, "rtt": 1}')
    assert any("tcp_probe: fields returned" in d and "'rtt'" in d for d in disagreements(sides[0], defs))


def test_a_category_the_twin_does_not_know_fails(sides):
    scripts = _mutated_script(sides, "tcp_probe", "$client = New-Object System.Net.Sockets.TcpClient",
                              "if ($port -eq 0) { throw (New-XconError 'PortClosed' '0x8007274D' 'closed') }\n"
                              "$client = New-Object System.Net.Sockets.TcpClient")
    found = disagreements(scripts, sides[1])
    assert any("tcp_probe: the twin never raises ['PortClosed']" in d for d in found)
    assert any("tcp_probe: the script raises" in d for d in found)


def test_an_op_reaching_a_server_without_target_credentials_fails(sides):
    scripts, defs = sides
    found = disagreements(scripts, defs, target_ops=set(ops.TARGET_OPS) - {"reg_read"})
    assert found == ["reg_read: takes a target server: True, in TARGET_OPS: False"]
    found = disagreements(scripts, defs, lab_ipc=set(second_hop.IPC_OPS) - {"reg_read"})
    assert any(d.startswith("IPC$ ops:") for d in found)


def test_the_lab_directory_is_the_twin(sides):
    # the model reads the real package, not a copy
    assert os.path.isdir(LAB_DIR) and "_op_dir_search" in sides[1]
