"""A lab in this process behind a real WS-Management listener, reached with the project's own WinRM
client (xcon.winrm_client over pywinrm): the wire as a playbook has it, without starting xconlab."""
from __future__ import annotations

import contextlib
import os

import yaml

from xcon.winrm_client import WinRMClient
from xconlab_lab.handler import CommandHandler
from xconlab_lab.model import Lab
from xconlab_lab.wsman import EndpointConfig, WsmanServer

TOPOLOGIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab", "topologies")
USER, PASSWORD = "CONTOSO\\xcon", "S3cret!"


def topology(name):
    with open(os.path.join(TOPOLOGIES, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@contextlib.contextmanager
def wire(data, endpoint, state_dir, transport="ntlm"):
    """(lab, client): the lab of `data`, and a client of its WinRM host `endpoint` (NTLM: a
    management host's second hop is anonymous unless the client carries target credentials)."""
    lab = Lab.from_dict(data)
    server = WsmanServer([EndpointConfig(endpoint, auth=(transport,), users={USER: PASSWORD})], CommandHandler(lab),
                         str(state_dir))
    port = dict(server.start())[endpoint]
    try:
        yield lab, WinRMClient({"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": USER,
                                "ansible_password": PASSWORD, "ansible_winrm_scheme": "http",
                                "ansible_winrm_transport": transport}, command_timeout_sec=60, retries=0)
    finally:
        server.stop()
