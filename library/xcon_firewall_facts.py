#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_firewall_facts module; the work is done on the controller by
# action_plugins/xcon_firewall_facts.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_firewall_facts
short_description: Read a proxy firewall's TCP 102 service passers, routed paths and client-side transparency
description:
  - Facts through a driver. C(raptor) (guided) - Raptor Eagle and its successors have no scriptable
    interface, so the facts are what the operator documented in the inventory (O(declared)),
    overlaid with the change records that earlier runs had confirmed (O(state_file)); the diagnosis
    cross-checks them against MTA evidence and reports contradictions.
  - C(nftables) - for a Linux gateway; the facts are, as for C(raptor), the declaration overlaid with
    the confirmed change records (the toolkit does not read the gateway's table itself).
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  name:
    description: The firewall's name. Default - the inventory name.
    type: str
  driver:
    description: Firewall driver.
    type: str
    default: raptor
    choices: [raptor, nftables]
  declared:
    description:
      - The documented rule set - C(product), C(inside) and C(outside) (server names behind each
        interface), C(interfaces) (C(internal), C(external) addresses), C(passers) (C(port),
        C(interface), C(target)), C(routed_paths) (C(hosts), C(port)), C(client_transparency).
    type: dict
    default: {}
  state_file:
    description: The toolkit's record of confirmed change records for this firewall (JSON).
    type: path
notes:
  - Check mode - fully supported (read-only).
"""

EXAMPLES = r"""
- name: Read the Raptor firewall's documented facts
  xcon_firewall_facts:
    declared:
      product: raptor-eagle-5
      inside: [EXIN]
      outside: [EXOUT]
      interfaces: {internal: 192.0.2.1, external: 198.51.100.1}
      passers:
        - {port: 102, interface: external, target: EXIN}
      routed_paths: []
      client_transparency: true
"""

RETURN = r"""
firewall:
  description: The firewall facts.
  returned: success
  type: dict
  sample:
    name: FW1
    driver: raptor
    source: inventory
    client_transparency: true
    passers: [{port: 102, interface: external, target: EXIN}]
    routed_paths: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import FIREWALL_FACTS


def main():
    module = AnsibleModule(argument_spec=FIREWALL_FACTS, supports_check_mode=True)
    module.fail_json(msg="xcon_firewall_facts runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
