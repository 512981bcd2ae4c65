#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_connector_info module; the work is done on the controller
# by action_plugins/xcon_connector_info.py (one WinRM command per call).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_connector_info
short_description: Read an Exchange server's X.400 (RFC 1006) connectors, and optionally its MTA evidence
description:
  - Reads every X.400 TCP connector (class C(RFC1006-X400-Link)) of one Exchange server over WinRM, with
    ADSI/LDAP, and decodes every property page - schedule style and grid, two-way alternate, Stack
    address and type, OSI selectors, remote MTA name, cost (from Connected-Domains and Routing-List),
    override values. Secrets (remote MTA and override passwords) are always masked.
  - With O(evidence_window_minutes) it also reads, in the same WinRM command, the MTA evidence - the
    MSExchangeMTA events of that window (1290, 289, 1294, 1293, 9301 with its address decoded, 37, 659,
    660), the queue length of every connection, the work queue and the MTA service state.
  - Runs on the controller as an action plugin. The connection settings are those Ansible's winrm
    connection plugin resolves for the server or its management host (C(ansible_host),
    C(ansible_user), C(ansible_password) and their aliases, C(-u)/C(-k), C(ansible_winrm_*)), so an
    existing Windows inventory works unchanged; https with certificate validation is the default.
  - A read-only module, it runs the same under check mode.
version_added: "0.1.0"
author: fix-xcon maintainers
extends_documentation_fragment:
  - xcon_common
options:
  names:
    description: Only these connectors (directory names). Default - all.
    type: list
    elements: str
  include_raw:
    description: Also return every raw attribute as read (octet strings in hex, secrets masked).
    type: bool
    default: false
  evidence_window_minutes:
    description: Also read the MTA evidence of the last this many minutes of the server's clock.
    type: int
  check_write_access:
    description: Also read whether the account may modify the connectors (returned as RV(write_access)).
    type: bool
    default: false
  fail_on_error:
    description:
      - When false, an unreachable server, refused credentials or denied access do not fail the task;
        the result carries RV(xcon_error) instead, so an audit can report the server as not read.
    type: bool
    default: true
  save_raw_to:
    description: Write the raw answers (no secret attributes are read) to this JSON file on the controller, for offline re-analysis.
    type: path
  evidence_baseline_file:
    description:
      - JSON file of per-server clock times (written by xcon_verify); events older than the server's
        time there are not evidence (they describe a configuration that no longer runs).
    type: path
  result_file:
    description:
      - Write the full result (connectors, evidence, write_access, xcon_error) as JSON to this file on
        the controller (mode 0600) and return only a summary (C(result_file), counts, C(xcon_error)).
      - For fleet audits - a large registered result per host costs the controller time on every
        later task; M(xcon_diagnose) reads the file when the registered result names one.
    type: path
  fleet:
    description:
      - Read every one of these inventory hosts from this one task (run it with C(run_once), the
        play's hosts as C(ansible_play_hosts)), instead of the task's host alone. Each host is read
        with its own connection variables and its own C(xcon_server_name), C(xcon_exchange_version),
        C(xcon_management_host), C(xcon_ldap_port), C(xcon_organization) and
        C(xcon_evidence_window_minutes) (O(server), O(exchange_version) and O(management_host) are not
        used); the commands go out from C(forks) threads, one WinRM command per host, spread over the
        controller's cores (the first shares of the hosts in forked processes, the environment
        variable C(XCON_FLEET_PROCESSES) sets how many; C(1) keeps every read in the task's own process).
      - Returns RV(hosts), one summary per host; a host that could not be read has C(xcon_error) in its
        summary (with O(fail_on_error=false)). The full results are kept only with O(result_dir), the
        raw answers only with O(save_raw_dir) (the back-up of role xcon_backup; no evidence is read
        unless O(evidence_window_minutes) is given). README "Performance" says why and what it costs.
    type: list
    elements: str
  result_dir:
    description: With O(fleet) - each host's full result goes to C(<result_dir>/<host>.json) (as O(result_file)).
    type: path
  save_raw_dir:
    description:
      - With O(fleet) - each host's raw answers go to C(<save_raw_dir>/<host>.json) (as O(save_raw_to)).
      - The directory is created with mode 0700 when it does not exist.
    type: path
  save_firewall_facts:
    description:
      - With O(save_raw_dir) - firewall name to the facts the run read from it (M(xcon_firewall_facts));
        each goes to C(<save_raw_dir>/<name>.firewall.json) with its SHA-256 sidecar (mode 0600),
        before any host is read. A firewall whose facts cannot be saved fails the task as a whole
        (no host is read), so a back-up is never taken for half of what a run changes.
      - The back-up of role xcon_backup; the names saved are returned as RV(firewalls_saved).
    type: dict
  raw_from_dir:
    description:
      - With O(fleet) and O(save_raw_dir) - the back-up is made from the raw answers this run's read
        already saved (its O(save_raw_dir), C(<raw_from_dir>/<host>.json)), not read again - no WinRM
        command. Each host's file must match its SHA-256 sidecar; it is copied to
        C(<save_raw_dir>/<host>.json) with its own sidecar (mode 0600).
      - A host without a file there (this run did not read it), or whose file fails its checksum or
        cannot be copied, has C(xcon_error) in its summary and in RV(unread), as a host that could not
        be read.
      - The back-up of role xcon_backup - what the servers held when the run read them, before any
        change.
    type: path
notes:
  - Uses one WinRM command (one shell, one command, the script on stdin) per call, per host with O(fleet).
  - Check mode - fully supported (read-only). Diff - not applicable.
seealso:
  - module: xcon_connector
  - module: xcon_mta_evidence
"""

EXAMPLES = r"""
- name: Read the connectors and the last two hours of MTA evidence
  xcon_connector_info:
    evidence_window_minutes: 120
  register: exin

- name: Read one connector of a 5.5 server through a management host
  xcon_connector_info:
    server: EX55A
    management_host: mgmt01
    names: [TO-OUTSIDE]
    include_raw: true
"""

RETURN = r"""
server:
  description: The server that was read.
  returned: always
  type: str
  sample: EXIN
directory:
  description:
    - Where the connectors were read - C(host) and C(server) of the directory replica, its C(version), C(own) (the server's own directory), C(same_site), and C(staleness) (how far behind replication can leave that replica); C(reason) when none could be read.
    - Exchange 5.5 and 5.0 servers are read in their own directory (5.0 answers searches only); an Exchange 4.0 server, which has no LDAP, from another server's replica (host variable C(xcon_directory_host), else a server of the same organisation in the inventory, its own site first by C(xcon_site)).
  returned: always
  type: dict
connectors:
  description: The connectors, decoded. Secrets are masked.
  returned: success
  type: list
  elements: dict
  sample:
    - name: TO-OUTSIDE
      dn: cn=TO-OUTSIDE,cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO
      schedule: always
      two_way_alternate: true
      stack_address: 192.0.2.1
      address_type: ip
      remote_mta: EXOUT
      remote_password: "********"
      cost: 1
evidence:
  description: The MTA evidence (events, counts per id, 9301 addresses, queues, work queue, service state).
  returned: when evidence_window_minutes is set and the read succeeded
  type: dict
write_access:
  description: Whether the account may modify the connectors.
  returned: when check_write_access is true and the read succeeded
  type: bool
raw:
  description: Raw entries as read (octet strings in hex, secrets masked).
  returned: when include_raw is true
  type: list
  elements: dict
xcon_error:
  description: Why the server could not be read (code XCON-UNREACHABLE, XCON-TLS-FAILED, XCON-ACCESS-DENIED, XCON-CLIENT-LIBRARY-MISSING, XCON-SECOND-HOP or XCON-OPERATION-FAILED, and a reason).
  returned: when the read failed and fail_on_error is false
  type: dict
  sample: {code: XCON-UNREACHABLE, reason: "connection refused by 127.0.0.1:5986"}
result_file:
  description: Where the full result was written (then C(connectors), C(evidence) and C(write_access) are only in that file).
  returned: when result_file is set
  type: str
summary:
  description: Counts of what was read (connectors, events, queued messages).
  returned: when result_file is set and the read succeeded
  type: dict
  sample: {connectors: 1, events: 42, queued: 18}
hosts:
  description: With O(fleet) - per inventory host, the summary a O(result_file) read returns (C(server), C(winrm_commands), C(result_file) with O(result_dir), C(summary) or C(xcon_error)).
  returned: when fleet is set
  type: dict
  sample: {EXIN: {server: EXIN, winrm_commands: 1, result_file: /runs/x/audit/EXIN.json, summary: {connectors: 1, events: 42, queued: 18}}}
unread:
  description: With O(fleet) - the hosts that could not be read, each with its RV(xcon_error) (code and reason).
  returned: when fleet is set
  type: dict
  sample: {EXIN2: {code: XCON-UNREACHABLE, reason: "connection refused by 127.0.0.1:5986"}}
firewalls_saved:
  description: With O(fleet) and O(save_raw_dir) - the firewalls whose facts were saved (O(save_firewall_facts)).
  returned: when fleet and save_raw_dir are set
  type: list
  elements: str
  sample: [FW1]
winrm_commands:
  description: Number of WinRM commands this call sent.
  returned: always
  type: int
  sample: 1
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import CONNECTOR_INFO


def main():
    module = AnsibleModule(argument_spec=CONNECTOR_INFO, supports_check_mode=True)
    module.fail_json(msg="xcon_connector_info runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
