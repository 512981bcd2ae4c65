"""Malformed topologies end in a TopologyError naming the file, the key path and what was expected,
never in a raw TypeError/KeyError (a lab user writes topologies by hand, e.g. to replay an event log)."""
import copy
import os
import random

import pytest
import yaml

from xconlab_lab.topology import TopologyError, validate

TOPOLOGIES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lab", "topologies")
# Values a hand-written YAML file can hold where something else was meant (unhashable ones included).
VARIANTS = (None, "abc", "", 0, -1, 99999, 1.5, float("nan"), float("inf"), True, [], {}, [[]], [{}],
            {"a": 1}, {7: "x"}, "192.0.2.10", "EXIN", ["EXIN"])


def load(name):
    with open(os.path.join(TOPOLOGIES, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def paths(node, path=()):
    """Every key path of a loaded topology (mapping keys and list indexes), parents first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield path + (key,)
        yield from paths(value, path + (key,))


def mutated(data, path, value):
    data = copy.deepcopy(data)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if value == "DELETE":
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)
    return data


@pytest.mark.parametrize("name,path,value,key", [
    ("kb.yml", ("firewalls", "FW1", "inside", 0), [], "firewalls.FW1.inside[0]"),
    ("kb.yml", ("firewalls", "FW1", "outside", 0), {}, "firewalls.FW1.outside[0]"),
    ("kb.yml", ("firewalls", "FW1", "passers", 0, "target"), ["EXIN"], "firewalls.FW1.passers[0].target"),
    ("kb.yml", ("traffic", 0, "from"), {"a": 1}, "traffic[0].from"),
    ("kb.yml", ("traffic", 1, "to"), [], "traffic[1].to"),
    ("mgmt.yml", ("servers", "EXIN", "managed_by"), [], "servers.EXIN.managed_by"),
    ("mgmt.yml", ("management_hosts", "MGMT1", "manages", 0), {}, "management_hosts.MGMT1.manages[0]"),
    ("kb.yml", ("traffic", 0, "per_minute"), float("inf"), "traffic[0].per_minute"),
    ("kb.yml", ("time_scale",), float("nan"), "time_scale"),
    ("kb.yml", ("servers", 7), {}, "servers.7"),
])
def test_known_crashers_name_the_key(name, path, value, key):
    with pytest.raises(TopologyError) as info:
        validate(mutated(load(name), path, value), source=name)
    assert info.value.key == key and str(info.value).startswith(f"topology {name}: {key}: expected ")


def test_seeded_mutations_give_topology_errors_or_validate():
    rng = random.Random(196381)
    outcomes = {"valid": 0, "error": 0}
    for name in ("kb.yml", "mgmt.yml", "never.yml"):
        data = load(name)
        every = list(paths(data))
        for path in rng.sample(every, 12):
            value = rng.choice(VARIANTS + ("DELETE",))
            try:
                validate(mutated(data, path, value), source=name)
            except TopologyError as exc:
                outcomes["error"] += 1
                assert str(exc).startswith(f"topology {name}: ") and ": expected " in str(exc), (path, value)
            else:
                outcomes["valid"] += 1
    assert outcomes["error"] >= 20, outcomes


def test_cli_validate_prints_one_line(tmp_path):
    import subprocess

    xconlab = [os.path.join(os.path.dirname(TOPOLOGIES), "xconlab"), "validate"]
    bad = tmp_path / "replay.yml"
    data = load("kb.yml")
    data["servers"]["EXIN"]["winrm"]["port"] = "abc"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = subprocess.run(xconlab + [str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr == (
        f"xconlab: error: topology {bad}: servers.EXIN.winrm.port: expected an integer 0..65535, got 'abc'\n")
    proc = subprocess.run(xconlab + [os.path.join(TOPOLOGIES, "kb.yml")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0 and "valid (2 server(s)" in proc.stdout, proc.stderr
