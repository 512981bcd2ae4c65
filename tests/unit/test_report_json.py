"""report.json's one-pass writer (xcon.report_json.dumps) writes exactly the bytes of its definition
(by_lines: json.dumps' indented text, then each object of scalars joined on one line)."""

from __future__ import annotations

import random

import pytest

from xcon import report_json
from test_report import sample_report

AWKWARD_STRINGS = ["", "plain", "with [bracket", "curly }", "{}", "quote \" and \\ backslash", "new\nline\ttab",
                   "\x1b[2J", "\u202e rtl", "émigré ünïcode 日本", "trailing space ", " leading", ": colon, comma",
                   "a" * 200]
SCALARS = [None, True, False, 0, -1, 10 ** 20, 1.5, -0.0, 1e-7, 3.0, float("inf"), float("-inf"), float("nan")] + AWKWARD_STRINGS


def _value(rng, depth):
    pick = rng.random()
    if depth > 4 or pick < 0.45:
        return rng.choice(SCALARS)
    if pick < 0.75:
        return {rng.choice(AWKWARD_STRINGS) + str(i): _value(rng, depth + 1) for i in range(rng.randint(0, 5))}
    items = [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return tuple(items) if rng.random() < 0.2 else items


@pytest.mark.parametrize("seed", range(60))
def test_the_one_pass_text_is_the_definitions(seed):
    data = _value(random.Random(seed), 0)
    assert report_json.dumps(data) == report_json.by_lines(data)


def test_a_report_and_its_edge_cases():
    report = sample_report()
    assert report_json.dumps(report) == report_json.by_lines(report)
    for data in ({}, [], {"a": {}}, {"a": []}, [{}], {"only": 1}, {"a": {"b": 1}, "c": [1, {"d": "x"}]}, "top", 7):
        assert report_json.dumps(data) == report_json.by_lines(data), data


def test_what_it_does_not_expect_goes_to_the_definition():
    assert report_json.dumps({2: "int keys", 10: {1.5: None}}) == report_json.by_lines({2: "int keys", 10: {1.5: None}})
    with pytest.raises(TypeError):
        report_json.dumps({"a": {1, 2}})   # json cannot hold a set: as json.dumps says


def test_a_copy_of_json_data_shares_nothing_and_other_data_is_deep_copied():
    data = {"a": [{"b": 1.5, "c": None, "d": "é"}], "e": True}
    copy_ = report_json.copied(data)
    assert copy_ == data
    copy_["a"][0]["b"] = 2
    assert data["a"][0]["b"] == 1.5
    odd = {"s": {1, 2}}
    assert report_json.copied(odd) == odd and report_json.copied(odd)["s"] is not odd["s"]
