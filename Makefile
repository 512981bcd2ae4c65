# fix-xcon: the README's commands.  Every target sets up what it needs first.
SHELL := /bin/bash
VENV := .venv/bin
TOPOLOGY ?= tests/lab/topologies/kb.yml
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup lab-up lab-down audit-lab fix-lab test lint unit lab-tests integration molecule bench

setup:
	@scripts/setup

lab-up: setup
	@tests/lab/xconlab down >/dev/null 2>&1 || true
	tests/lab/xconlab up $(TOPOLOGY)
	@echo "lab: letting an emulated hour of mail flow (and fail) before the audit"
	tests/lab/xconlab advance 60

lab-down:
	@tests/lab/xconlab down

# The main job against the lab: fresh KB lab, audit, then fix and verify.
fix-lab: lab-up
	ansible-playbook fix-xcon.yml --check --diff
	ansible-playbook fix-xcon.yml

audit-lab: lab-up
	ansible-playbook fix-xcon.yml --check --diff

lint: setup
	$(VENV)/ansible-lint --profile production

unit: setup
	$(VENV)/python -m pytest -q tests/unit

test: setup
	$(VENV)/python -m pytest -q tests
	$(VENV)/ansible-lint --profile production
	tests/molecule-all

bench: setup
	$(VENV)/python tests/bench/bench.py --sizes 10,50,100 --repeat 3 --fix-repeat 1 --baseline-repeat 1
