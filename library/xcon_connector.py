#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_connector module; the work is done on the controller by
# action_plugins/xcon_connector.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_connector
short_description: Manage an Exchange X.400 (RFC 1006) connector's schedule, two-way alternate, Stack address and cost, or clone it
description:
  - Makes one X.400 TCP connector of one Exchange server match what is asked - O(state=present) with
    any of O(schedule), O(two_way_alternate), O(stack_address) / O(address_type), O(cost),
    O(display_name); or O(state=absent).
  - With O(clone_from) a missing connector is created as a copy of another connector of the same server,
    every property-page attribute copied verbatim (selectors, remote MTA name and password, override,
    retry and RTS values, address spaces and connected sites, ...) except the directory and display
    name, the schedule, the Stack address and the cost, which take the values given. This is the KB's
    workaround 2 (O(schedule=remote), Stack = the outside server, O(cost=99)).
  - Cost is rewritten in every Connected-Domains and Routing-List entry.
  - One WinRM command reads, one writes; the write is a single directory commit (SetInfo), so a failure
    leaves the connector as it was, and a re-run converges.
  - Changes to the Stack address, schedule, two-way alternate or cost need the MTA service restarted -
    the module only flags it (RV(restart_required), fact C(xcon_restart_pending) without O(fleet), the restart marker); the role
    xcon_mta_restart restarts once at the end.
version_added: "0.1.0"
author: fix-xcon maintainers
extends_documentation_fragment:
  - xcon_common
options:
  name:
    description:
      - Directory name (RDN) of the connector. May contain spaces, commas, quotes and non-ASCII.
      - Required, unless O(fleet) is given (then each change names its connector).
    type: str
  state:
    description: Whether the connector should exist.
    type: str
    default: present
    choices: [present, absent]
  display_name:
    description: Display name (Admin-Display-Name).
    type: str
  schedule:
    description: Schedule style (Activation-Style). C(selected) keeps the existing schedule grid.
    type: str
    choices: [always, never, selected, remote]
  two_way_alternate:
    description: Two-way alternate (Advanced page).
    type: bool
  stack_address:
    description: Stack address (N-Address) - an IP address or a host name / FQDN.
    type: str
  address_type:
    description: Whether O(stack_address) is an IP address or a host name (N-Address-Type). Default - guessed from the value.
    type: str
    choices: [ip, hostname]
  cost:
    description: Cost written into every Connected-Domains and Routing-List entry.
    type: int
  remote_password:
    description: Remote MTA password (Gateway-Local-Cred). Never returned or logged.
    type: str
  clone_from:
    description: Directory name of a connector of the same server to copy when the connector does not exist.
    type: str
  restore:
    description:
      - Rollback - one write of a run, as its change journal recorded it (C(<run dir>/journal/<host>.json), handed
        over by C(xcon_rollback_plan)). A modified connector gets back only the attributes that write changed,
        and only where each still holds the value the run wrote; a connector the run created is deleted only
        if it is still as created.
      - Otherwise nothing is written on that connector and RV(conflict) gives, per attribute, the value before
        the run, the value the run wrote and the value now (unless O(force)).
      - A second rollback finds everything as before and changes nothing.
    type: dict
  force:
    description: With O(restore) - restore (or delete) even where the connector was changed since the run wrote it.
    type: bool
    default: false
  run_dir:
    description:
      - The run's directory on the controller. Each write is recorded in C(<run_dir>/journal/<inventory host>.json)
        (with a SHA-256 sidecar) before it is sent - the attributes it changes, their value before and the value
        written - so that rollback restores exactly what this run wrote. Not written in check mode.
    type: path
  restart_marker:
    description:
      - A file on the controller written when a change needing an MTA restart was made, so a run
        interrupted before its restart still restarts on the next run (xcon_mta_service removes it).
    type: path
  fleet:
    description:
      - Apply the planned changes of O(phase) of every one of these inventory hosts from this one task
        (run it with C(run_once), the play's hosts as C(ansible_play_hosts)), instead of one change of
        the task's host. Each host's changes are its entries of O(phase) in the plan M(xcon_diagnose)
        wrote (C(planned) in the diagnosis file its result C(xcon_diagnose_result) names, registered on
        localhost; the host's own C(xcon_change_changes) overrides them), without those of O(stopped_links); each entry's C(args) give the options of one change.
      - Each host is changed with its own connection variables, C(xcon_server_name),
        C(xcon_exchange_version) (its C(xcon_change_exchange_version) overrides it),
        C(xcon_management_host), C(xcon_ldap_port), C(xcon_organization) and C(xcon_site), its changes
        one after the other in its own thread of a pool of C(forks) threads, the hosts spread over the
        controller's cores (the first shares in forked processes; the environment variable
        C(XCON_FLEET_PROCESSES) sets how many, C(1) keeps every change in the task's own process; a
        host whose process ends before it answers has each change failed, made or not); a host written
        through another server (4.0, 5.0) or through the Exchange Administrator program is done one at
        a time, in the task's own process.
      - Returns RV(hosts); a failed change is its own outcome (in RV(failed_changes)), not the task's.
        README "Performance" says why and what it costs.
    type: list
    elements: str
  phase:
    description: With O(fleet) - which kind of planned change to apply.
    type: str
    choices: [precondition, reverse_connector, stack_repoint, stack_repoint_outside]
  stopped_links:
    description: With O(fleet) - links that stopped at an earlier step; their changes are not made.
    type: list
    elements: str
    default: []
  restart_marker_dir:
    description: With O(fleet) - each host's O(restart_marker) is C(<restart_marker_dir>/<host>) (unless its C(xcon_change_restart_marker) says otherwise).
    type: path
notes:
  - Check mode - supported; nothing is written and RV(diff) shows what would change.
  - Diff - supported; secrets are masked in before and after.
seealso:
  - module: xcon_connector_info
  - module: xcon_mta_service
"""

EXAMPLES = r"""
- name: Preconditions of KB Q196381 - schedule Always and two-way alternate
  xcon_connector:
    name: TO-OUTSIDE
    schedule: always
    two_way_alternate: true

- name: Workaround 2 - the reverse connector on the inside server
  xcon_connector:
    name: TO-OUTSIDE-REVERSE
    clone_from: TO-OUTSIDE
    schedule: remote
    stack_address: 198.51.100.10
    address_type: ip
    cost: 99

- name: Rollback - undo one journaled write, unless the connector was changed since
  xcon_connector:
    name: TO-OUTSIDE
    restore: "{{ item }}"
  loop: "{{ xcon_rollback_writes }}"

- name: Workaround 1 - point the Stack address at the peer server
  xcon_connector:
    name: TO-INSIDE
    stack_address: exin.inside.contoso.example
    address_type: hostname
"""

RETURN = r"""
dn:
  description: LDAP DN of the connector.
  returned: always
  type: str
  sample: cn=TO-OUTSIDE-REVERSE,cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO
before:
  description: The connector before (decoded, secrets masked); empty when it did not exist.
  returned: always
  type: dict
after:
  description: The connector after (or as it would be in check mode), secrets masked.
  returned: always
  type: dict
operations:
  description: The directory operations sent (or that would be sent), as the PowerShell operations' JSON, secrets masked.
  returned: always
  type: list
  elements: dict
restart_required:
  description: Whether MSExchangeMTA must be restarted for the change to take effect.
  returned: always
  type: bool
rollback:
  description: With O(restore) - C(restore), C(forced), C(restored_already) (nothing to do), C(conflict) (nothing written) or C(not_restorable).
  returned: when O(restore) is given
  type: str
conflict:
  description: With O(restore) - per attribute changed since the run, C(before) (before the run), C(written) (by the run) and C(now).
  returned: when the connector was changed since the run wrote it
  type: dict
msg:
  description: With O(restore) - what the rollback did or why it did not, in one sentence.
  returned: when O(restore) is given
  type: str
hosts:
  description:
    - With O(fleet) - per inventory host, C(results) (one result per change, as a loop item's - C(item) the
      plan entry, C(changed), C(failed) and C(msg) when it failed, RV(dn), RV(before), RV(after), ...),
      C(changed), C(failed) and C(winrm_commands).
  returned: when fleet is set
  type: dict
  sample: {EXIN: {changed: true, failed: false, winrm_commands: 2, results: [{item: {id: "EXIN<->EXOUT#2"}, changed: true}]}}
fleet_id:
  description: With O(fleet) - an id of this task's result (the same name is registered by one fleet task per phase).
  returned: when fleet is set
  type: str
failed_changes:
  description: With O(fleet) - the plan entry id and reason of every change that failed.
  returned: when fleet is set
  type: dict
winrm_commands:
  description: Number of WinRM commands this call sent.
  returned: always
  type: int
directory:
  description:
    - Which directory was read and written - C(read_from), C(written_via) (the server whose LDAP took the write; null when nothing was written), C(own) (the server's own directory).
    - For an Exchange 4.0 or 5.0 server (whose directory takes no LDAP write) the write goes through an Exchange 5.5 server of its site (host variable C(xcon_directory_host), else found in the inventory by C(xcon_site)), and C(replication) says how long the module then waited for the change to reach the server's own replica (C(waited_minutes), C(confirmed) - read back on 5.0, the documented delay on 4.0 - and C(how)); host variable C(xcon_replication_timeout_minutes) (default 30) bounds the wait. A write is never sent to a 4.0 or 5.0 server's own directory.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import CONNECTOR


def main():
    module = AnsibleModule(argument_spec=CONNECTOR, supports_check_mode=True)
    module.fail_json(msg="xcon_connector runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
