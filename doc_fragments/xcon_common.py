# -*- coding: utf-8 -*-
# fix-xcon: options shared by every module that talks to an Exchange server (defined once, like
# the argument spec xcon.specs.COMMON they document).

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  server:
    description: NetBIOS name of the Exchange server. Default - host variable C(xcon_server_name), else the inventory name.
    type: str
  exchange_version:
    description: Exchange version profile (attribute names, encodings and what the server's own directory can do over LDAP - none on 4.0, search on 5.0, read-write on 5.5; see module_utils/xcon/profile.py).
    type: str
    default: "5.5"
    choices: ["4.0", "5.0", "5.5"]
  management_host:
    description:
      - Inventory name of a Windows host with WinRM that reaches the server over LDAP, the remote event
        log and remote performance counters (Exchange 5.5 runs on Windows NT, which has no WinRM).
      - Default - host variable C(xcon_management_host), else the server itself.
    type: str
  ldap_port:
    description:
      - TCP port of the server's Exchange 5.5 directory (LDAP). On a Windows 2000 domain controller
        Active Directory holds 389, and the Exchange directory was moved to another port (Q224447,
        Q250989).
      - Default - host variable C(xcon_ldap_port), else 389. Used by the modules that read or write the
        directory.
    type: int
  organization:
    description:
      - Exchange organisation name. Before reading the directory the module checks its RootDSE has the
        naming context C(o=ORGANIZATION) and is not Active Directory; otherwise the server is reported with
        code C(XCON-WRONG-DIRECTORY) (never as having no connectors).
      - Default - variable C(xcon_organization); without it any Exchange 5.5 organisation (an C(o=) naming
        context that is not Active Directory) is accepted.
    type: str
notes:
  - The connection settings are those Ansible's winrm connection plugin resolves for the server or
    its management host (its variables and aliases such as C(ansible_winrm_password), C(-u)/C(-k),
    every C(ansible_winrm_*) argument pywinrm accepts, Kerberos kinit), https with certificate
    validation by default, so an existing Windows inventory works unchanged.
  - Runs on the controller as an action plugin; one WinRM command per phase (the script on stdin).
"""
