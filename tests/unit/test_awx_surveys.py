"""The AWX job-template surveys (docs/awx/*.survey.json) against the playbook's own input rules.

Two sets of rules meet here:

* AWX's, for a survey spec it imports (POST .../job_templates/N/survey_spec/) and for the answers
  it accepts (awx/api/views JobTemplateSurveySpec, awx/main/models/mixins.py
  SurveyJobTemplateMixin): ``name``, ``description`` and a non-empty ``spec``; per question
  ``type``, ``question_name``, ``variable`` (unique) and ``required`` (bool); ``min``/``max`` whole
  numbers or null; a multiple choice lists its choices and its default is one of them; an integer
  answer lies in [min, max], a text answer's length in [min, max].
* The playbook's, in module_utils/xcon/inputs.py: each operator variable's kind and range, applied
  by ``inputs.check`` (xcon_validate refuses a run with a bad value before any host is read).

Every survey question must name a variable of inputs.CONTRACT, and match its rule both ways: a
survey may not allow a value the playbook refuses, nor forbid a value the playbook accepts.  The
checks ask ``inputs.check`` itself at the survey's edges (each choice, min and max, one past them),
so they follow the rule table when it changes.  Text answers can only be bounded by length in a
survey; their characters are checked by the playbook (the limit of what a survey can say).
"""

from __future__ import annotations

import copy
import glob
import json
import os

import pytest

from xcon import inputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SURVEYS = sorted(glob.glob(os.path.join(ROOT, "docs", "awx", "*.survey.json")))
AWX_TYPES = {"text": str, "textarea": str, "password": str, "integer": int, "float": (int, float),
             "multiplechoice": str, "multiselect": str}
# A sample value of a text kind, n characters long, that passes the kind's character rules.
TEXT_SAMPLE = {"name": lambda n: "X" * n, "run_id": lambda n: "r" * n}


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _choices(question):
    choices = question.get("choices") or []
    if isinstance(choices, str):  # AWX also takes one choice per line
        choices = [c for c in choices.splitlines() if c.strip()]
    return list(choices)


def awx_import_problems(survey):
    """What AWX's survey_spec endpoint would refuse."""
    problems = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            problems.append(f"'{field}' missing or not a {kind.__name__}")
    if problems or not survey["spec"]:
        return problems or ["'spec' has no question"]
    seen = set()
    for index, question in enumerate(survey["spec"]):
        where = f"question {index} ({question.get('variable')})"
        for field, kind in (("type", str), ("question_name", str), ("variable", str), ("required", bool)):
            if not isinstance(question.get(field), kind):
                problems.append(f"{where}: '{field}' missing or not a {kind.__name__}")
        if question.get("variable") in seen:
            problems.append(f"{where}: variable given twice")
        seen.add(question.get("variable"))
        qtype = question.get("type")
        if qtype not in AWX_TYPES:
            problems.append(f"{where}: type {qtype!r} is not an AWX survey type")
            continue
        default = question.get("default")
        if default not in ("", None) and (not isinstance(default, AWX_TYPES[qtype]) or isinstance(default, bool)):
            problems.append(f"{where}: default {default!r} is not of type {qtype}")
        for key in ("min", "max"):
            if question.get(key) is not None and (not isinstance(question[key], int) or isinstance(question[key], bool)):
                problems.append(f"{where}: {key} must be a whole number or null")
        if qtype in ("multiplechoice", "multiselect"):
            if not _choices(question):
                problems.append(f"{where}: a {qtype} question lists no choices")
            elif default not in ("", None) and default not in _choices(question):
                problems.append(f"{where}: default {default!r} is not one of the choices")
    return problems


def _accepts(var, value):
    return inputs.check(var, value) is None


def rule_problems(question):
    """Where the question allows a value the playbook refuses, or forbids one it accepts."""
    name, qtype = question["variable"], question["type"]
    var = inputs.BY_NAME.get(name)
    if var is None:
        return [f"{name}: not an operator variable of the playbook (module_utils/xcon/inputs.py CONTRACT)"]
    problems = []
    allows = f"{name}: the survey allows"
    if var.kind in ("bool", "choice"):
        if qtype != "multiplechoice":
            return [f"{allows} any {qtype} answer; the playbook takes only {var.kind} values: use multiplechoice"]
        choices = _choices(question)
        problems += [f"{allows} {c!r}, which the playbook refuses: {inputs.check(var, c)}" for c in choices if not _accepts(var, c)]
        if var.kind == "bool":
            reached = {inputs.as_bool(c) for c in choices}
            problems += [f"{name}: the survey forbids {value}, which the playbook accepts" for value in (True, False) if value not in reached]
        else:
            problems += [f"{name}: the survey forbids {c!r}, which the playbook accepts" for c in var.choices if c not in choices]
    elif var.kind == "int":
        if qtype != "integer":
            return [f"{allows} any {qtype} answer; the playbook takes whole numbers: use integer"]
        low, high = question.get("min"), question.get("max")
        if low is None or high is None:
            return [f"{allows} any whole number (min/max unset); the playbook refuses some: {inputs.check(var, -10 ** 12)}"]
        problems += [f"{allows} {v}, which the playbook refuses: {inputs.check(var, v)}" for v in (low, high) if not _accepts(var, v)]
        problems += [f"{name}: the survey forbids {v}, which the playbook accepts" for v in (low - 1, high + 1) if _accepts(var, v)]
    elif var.kind in TEXT_SAMPLE:
        if qtype != "text":
            return [f"{name}: a {var.kind} is one line of text: use text"]
        sample, low, high = TEXT_SAMPLE[var.kind], question.get("min") or 0, question.get("max")
        if high is None:
            return [f"{allows} text of any length; the playbook refuses {inputs.check(var, sample(10 ** 4))}"]
        if not _accepts(var, sample(high)):
            problems.append(f"{allows} {high} characters, which the playbook refuses: {inputs.check(var, sample(high))}")
        if _accepts(var, sample(high + 1)):
            problems.append(f"{name}: the survey forbids {high + 1} characters, which the playbook accepts")
        # empty = not set (the default applies); a required question may refuse it
        if low > 1 and _accepts(var, sample(low - 1)) or (low == 1 and not question["required"]):
            problems.append(f"{name}: the survey forbids {low - 1} characters, which the playbook accepts")
    else:
        return [f"{name}: a {var.kind} variable is a deployment setting: set it in the job template's extra variables"]
    default = question.get("default")
    if default not in ("", None) and not _accepts(var, default):
        problems.append(f"{name}: default {default!r} is refused by the playbook: {inputs.check(var, default)}")
    return problems


def survey_problems(survey):
    problems = awx_import_problems(survey)
    if problems:
        return problems
    return [p for question in survey["spec"] for p in rule_problems(question)]


def test_a_survey_for_each_job_template():
    assert {os.path.basename(p) for p in SURVEYS} == {"audit.survey.json", "fix.survey.json", "rollback.survey.json"}


@pytest.mark.parametrize("path", SURVEYS, ids=os.path.basename)
def test_survey_imports_into_awx_and_matches_the_playbook_rules(path):
    assert survey_problems(_load(path)) == []


def _mutations():
    """Surveys that are wrong one way or the other, made from the shipped ones."""
    for path in SURVEYS:
        survey = _load(path)
        for index, question in enumerate(survey["spec"]):
            var = inputs.BY_NAME[question["variable"]]
            label = f"{os.path.basename(path)}:{question['variable']}"
            if question["type"] == "integer":
                yield f"{label} max+1", index, survey, {"max": question["max"] + 1}
                yield f"{label} min+1", index, survey, {"min": question["min"] + 1}
                yield f"{label} no max", index, survey, {"max": None}
                yield f"{label} as text", index, survey, {"type": "text"}
            elif question["type"] == "multiplechoice":
                yield f"{label} one choice fewer", index, survey, {"choices": _choices(question)[1:], "default": ""}
                yield f"{label} a bogus choice", index, survey, {"choices": _choices(question) + ["bogus"]}
            elif question["type"] == "text":
                yield f"{label} max+1", index, survey, {"max": question["max"] + 1}
                yield f"{label} max-1", index, survey, {"max": question["max"] - 1}
            if var.kind != "dir":
                yield f"{label} unknown variable", index, survey, {"variable": "xcon_no_such_variable"}


@pytest.mark.parametrize("label,index,survey,change", list(_mutations()), ids=lambda x: x if isinstance(x, str) else "")
def test_a_survey_wrong_either_way_fails(label, index, survey, change):
    """The check can fail: each edge moved by one, a choice dropped or added, a typed answer made text."""
    broken = copy.deepcopy(survey)
    broken["spec"][index].update(change)
    assert survey_problems(broken), label


def test_awx_import_rules_refuse_a_malformed_survey():
    survey = _load(SURVEYS[0])
    for change in ({"required": "yes"}, {"type": "boolean"}, {"min": "1"}, {"default": "nowhere", "choices": ["a"], "type": "multiplechoice"}):
        broken = copy.deepcopy(survey)
        broken["spec"][0].update(change)
        assert awx_import_problems(broken), change
    assert awx_import_problems({"name": "x", "description": "", "spec": []})
    twice = copy.deepcopy(survey)
    twice["spec"].append(copy.deepcopy(twice["spec"][0]))
    assert awx_import_problems(twice)
