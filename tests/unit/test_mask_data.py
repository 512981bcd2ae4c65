"""xcon.mask.mask_data's quick path (data whose JSON text holds no secret-like word is copied, not
walked) masks exactly what the walk masks."""

from __future__ import annotations

import pytest

from xcon import mask


def _walked(obj, secrets=()):
    known = mask._secret_values(obj, set(s for s in secrets if s))
    return mask.mask(obj, tuple(sorted(known, key=len, reverse=True)))


CASES = [
    {"links": [{"id": "A<->B", "findings": [{"code": "X", "evidence": {"n": 1, "ok": True, "none": None}}]}], "n": 1.5},
    {"evidence": {"Remote_PASSWORD": "hunter22"}, "message": "bind with hunter22 refused"},
    {"a": {"ſecret": "long-s value"}, "b": ["long-s value quoted"]},       # IGNORECASE takes U+017F for s
    {"note": "the word credentials in a value only"},
    {"attrs": {"Cred": ""}, "x": [1, 2, {"passwd": "pw12345"}], "y": "pw12345!"},
]


@pytest.mark.parametrize("case", CASES)
def test_the_quick_path_masks_what_the_walk_masks(case):
    assert mask.mask_data(case) == _walked(case)


def test_clean_data_is_copied_not_shared():
    data = {"links": [{"id": "A", "changes": [{"applied": False}]}]}
    copied = mask.mask_data(data)
    assert copied == data and copied is not data and copied["links"][0] is not data["links"][0]


def test_extra_secrets_and_data_json_cannot_hold_take_the_walk():
    assert mask.mask_data({"m": "token abcd here"}, secrets=("abcd",)) == {"m": "token ******** here"}
    assert mask.mask_data({"s": {1, 2}}) == {"s": {1, 2}}          # a set: not JSON, walked as before


class _Tagged(str):
    """A str subclass, as Ansible's tagged strings are."""


def test_the_walk_masks_every_secret_named_key_and_copies_the_rest():
    data = {"password": "x", "Password": 0, "cred": False, "secret": [], "n": None, "f": 1.5, 1: "p4ss",
            _Tagged("Remote_Password"): "pw", "a": {"ansible_winrm_password": "p4ss", "msg": "the p4ss here"},
            "t": ("p4ss", 1), "l": [{"ſecret": "v"}], "ok": True}
    masked = mask.mask(data)
    assert masked == {"password": mask.MASK, "Password": mask.MASK, "cred": False, "secret": [], "n": None, "f": 1.5,
                      1: "p4ss", "Remote_Password": mask.MASK, "a": {"ansible_winrm_password": mask.MASK, "msg": "the p4ss here"},
                      "t": ("p4ss", 1), "l": [{"ſecret": mask.MASK}], "ok": True}
    assert masked["a"] is not data["a"] and masked["l"][0] is not data["l"][0]
    # secret values are masked in every string, keys' values and tuples included (keys are kept)
    assert mask.mask(data, ("p4ss", ""))["a"]["msg"] == "the ******** here"
    assert mask.mask(data, ("p4ss",))["t"] == (mask.MASK, 1) and mask.mask(data, ("p4ss",))[1] == mask.MASK
