"""Operator input and module errors, through the real playbook against the lab: a bad value stops
the run before the first write with a message that names the variable, the host and what to do;
a module that fails says why (never a crash of the plugin itself)."""

from __future__ import annotations

import re

from conftest import directory_and_firewalls


def _output(run):
    return run.stdout + "\n" + run.stderr


def _flat(run):
    return " ".join(_output(run).split())


# -- module errors surface ---------------------------------------------------------------------------
def test_report_dir_that_is_a_file_is_named_with_what_to_do(lab, tmp_path):
    lab.up("kb.yml")
    afile = tmp_path / "not-a-directory"
    afile.write_text("x")
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook("--check", extra={"xcon_report_dir": str(afile)})
    text = _flat(run)
    assert run.returncode != 0, text[-4000:]
    assert "PlayContext" not in text and "Traceback" not in text, text[-4000:]
    assert str(afile) in text and re.search(r"not a directory", text, re.I), text[-4000:]
    assert directory_and_firewalls(lab.snapshot()) == before
