"""WS-Management SOAP envelopes: reading requests, writing responses and faults the way Windows does.

Only what the WinRS shell plugin (``http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd``)
needs: Create, Command, Send, Receive, Signal and Delete. Responses copy the element names,
prefixes and nesting of a Windows Server reply (pywinrm finds most values by local name, but the
ShellId must be the ``w:Selector Name="ShellId"`` of ``x:ResourceCreated``).
"""
from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}

WMI_ERROR = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError"
RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_COMMAND = SHELL + "/Command"
ACTION_SEND = SHELL + "/Send"
ACTION_RECEIVE = SHELL + "/Receive"
ACTION_SIGNAL = SHELL + "/Signal"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
STATE_RUNNING = SHELL + "/CommandState/Running"
STATE_DONE = SHELL + "/CommandState/Done"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# WSManFault codes (decimal, as Windows prints them in f:WSManFault/@Code).
FAULT_OPERATION_TIMEOUT = 2150858793   # 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT
FAULT_SHELL_NOT_FOUND = 2150858843     # 0x8033805B ERROR_WSMAN_INVALID_SELECTORS (shell/command)
FAULT_QUOTA = 2150859174               # 0x803381A6: WinRM quota exceeded (the code Ansible
                                       # looks for in MSFT_WmiError to re-create its shell)
FAULT_ACTION_NOT_SUPPORTED = 2150858858  # 0x8033806A ERROR_WSMAN_ACTION_NOT_SUPPORTED
FAULT_DESTINATION_UNREACHABLE = 2150858770  # 0x80338012 ERROR_WSMAN_DESTINATION_UNREACHABLE
FAULT_INVALID_MESSAGE = 2150858817     # 0x80338041 ERROR_WSMAN_BAD_MESSAGE ("schema validation")


class WsmanFault(Exception):
    """A SOAP fault to answer with (HTTP 500)."""

    def __init__(self, code: int, subcode: str, reason: str, message: str,
                 sender: bool = True, wmi_error: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode          # e.g. "w:TimedOut"
        self.reason = reason            # s:Reason/s:Text
        self.message = message          # f:WSManFault/f:Message
        self.sender = sender            # s:Sender (client's fault) or s:Receiver
        self.wmi_error = wmi_error      # also carry p:MSFT_WmiError (quota faults do)


def fault_operation_timeout() -> WsmanFault:
    text = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
    return WsmanFault(FAULT_OPERATION_TIMEOUT, "w:TimedOut", text, text, sender=False)


def fault_shell_not_found(shell_id: str) -> WsmanFault:
    return WsmanFault(
        FAULT_SHELL_NOT_FOUND, "w:InvalidSelectors",
        "The WS-Management service cannot process the request because the request contained "
        "invalid selectors for the resource. ",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell "
        "was not found on the server. Possible causes are: the specified ShellId is incorrect or the "
        "shell no longer exists on the server. Provide the correct ShellId or create a new shell and "
        "retry the operation. ")


def fault_command_not_found(shell_id: str, command_id: str) -> WsmanFault:
    return WsmanFault(
        FAULT_SHELL_NOT_FOUND, "w:InvalidSelectors",
        "The WS-Management service cannot process the request because the request contained "
        "invalid selectors for the resource. ",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
        f"command with CommandId {command_id} was not found on the server. Possible causes are: "
        "the specified CommandId is incorrect or the command no longer exists on the server. ")


def fault_shell_quota(limit: int) -> WsmanFault:
    text = (f"The WS-Management service cannot process the request. This user is allowed a maximum "
            f"number of {limit} concurrent shells, which has been exceeded. Close existing shells or "
            "raise the quota for this user. ")
    return WsmanFault(FAULT_QUOTA, "w:QuotaLimit", text, text, sender=False, wmi_error=True)


def fault_operations_quota(limit: int) -> WsmanFault:
    text = (f"The WS-Management service cannot process the request. This user is allowed a maximum "
            f"number of {limit} concurrent operations, which has been exceeded. Close existing "
            "operations for this user, or raise the quota for this user. ")
    return WsmanFault(FAULT_QUOTA, "w:QuotaLimit", text, text, sender=False, wmi_error=True)


def fault_action_not_supported(action: str) -> WsmanFault:
    return WsmanFault(
        FAULT_ACTION_NOT_SUPPORTED, "a:ActionNotSupported",
        "The action is not supported by the service. ",
        f"The WS-Management service cannot process the request because the action {action!s} "
        "is not supported for this resource. ")


def fault_unknown_resource(resource_uri: str) -> WsmanFault:
    return WsmanFault(
        FAULT_DESTINATION_UNREACHABLE, "w:DestinationUnreachable",
        "The WS-Management service cannot process the request because the resource URI is not valid. ",
        f"The WS-Management service cannot process the request. The resource URI ({resource_uri}) "
        "was not found in the WS-Management catalog. ")


def fault_bad_message(detail: str) -> WsmanFault:
    return WsmanFault(
        FAULT_INVALID_MESSAGE, "w:SchemaValidationError",
        "The SOAP XML in the message does not match the corresponding XML schema definition. ",
        f"The WS-Management service cannot process the request because the XML is invalid: {detail} ")


# ---- requests ---------------------------------------------------------------------------------
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: Optional[str], default: float) -> float:
    """xs:duration (``PT20S``, ``PT60.000S``, ``P0DT0H1M0S``) in seconds; ``default`` if unreadable."""
    match = _DURATION.match((text or "").strip())
    if not match or not any(match.groups()):
        return default
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


@dataclass
class Request:
    """The parts of a WS-Management request the server looks at."""

    action: str
    message_id: str
    resource_uri: str
    shell_id: Optional[str]
    operation_timeout: float
    max_envelope: int
    options: Dict[str, str] = field(default_factory=dict)
    body: Optional[ET.Element] = None

    def find(self, path: str) -> Optional[ET.Element]:
        return None if self.body is None else self.body.find(path, NS)

    def findall(self, path: str) -> List[ET.Element]:
        return [] if self.body is None else self.body.findall(path, NS)


def parse_request(data: bytes) -> Request:
    """Read a SOAP envelope; ``WsmanFault`` (schema validation) when it is not one."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise fault_bad_message(str(exc)) from None
    if root.tag != "{%s}Envelope" % NS["s"]:
        raise fault_bad_message("the root element is not a SOAP 1.2 Envelope")
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None:
        raise fault_bad_message("the envelope has no Header")

    def text(path: str) -> str:
        node = header.find(path, NS)
        return (node.text or "").strip() if node is not None else ""

    shell_id = None
    for selector in header.findall("w:SelectorSet/w:Selector", NS):
        if selector.get("Name") == "ShellId":
            shell_id = (selector.text or "").strip()
    options = {opt.get("Name", ""): (opt.text or "").strip()
               for opt in header.findall("w:OptionSet/w:Option", NS)}
    try:
        max_envelope = int(text("w:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_envelope = 153600
    return Request(
        action=text("a:Action"),
        message_id=text("a:MessageID"),
        resource_uri=text("w:ResourceURI"),
        shell_id=shell_id,
        operation_timeout=parse_duration(text("w:OperationTimeout"), 60.0),
        max_envelope=max_envelope,
        options=options,
        body=list(body)[0] if body is not None and len(body) else None,
    )


# ---- responses --------------------------------------------------------------------------------
_ENVELOPE_OPEN = (
    '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{a}" xmlns:x="{x}" xmlns:w="{w}" '
    'xmlns:rsp="{rsp}" xmlns:p="{p}">'.format(**NS)
)


def envelope(action: str, relates_to: str, body: str) -> bytes:
    """A response envelope: Action, a fresh MessageID, To anonymous, RelatesTo the request."""
    header = (
        f"<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        + (f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else "")
        + "</s:Header>"
    )
    return (_ENVELOPE_OPEN + header + f"<s:Body>{body}</s:Body></s:Envelope>").encode("utf-8")


def fault_envelope(fault: WsmanFault, relates_to: str, machine: str) -> bytes:
    code = "s:Sender" if fault.sender else "s:Receiver"
    body = (
        "<s:Fault>"
        f"<s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{escape(fault.subcode)}</s:Value>"
        "</s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="{NS["f"]}" Code="{fault.code}" Machine={quoteattr(machine)}>'
        f"<f:Message>{escape(fault.message)}</f:Message></f:WSManFault>"
        + (_wmi_error(fault) if fault.wmi_error else "")
        + "</s:Detail></s:Fault>"
    )
    return envelope(ACTION_FAULT, relates_to, body)


def _wmi_error(fault: WsmanFault) -> str:
    """The CIM error record Windows adds to quota faults (pywinrm: ``wmierror_code``)."""
    return (
        f'<p:MSFT_WmiError b:IsCIM_Error="true" xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" '
        f'xmlns:p="{WMI_ERROR}" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="p:MSFT_WmiError_Type">'
        '<p:CIMStatusCode xsi:type="cim:cimUnsignedInt">27</p:CIMStatusCode>'
        f'<p:Message xsi:type="cim:cimString">{escape(fault.message)}</p:Message>'
        f'<p:MessageID xsi:type="cim:cimString">HRESULT 0x{fault.code:08x}</p:MessageID>'
        f'<p:error_Code xsi:type="cim:cimUnsignedInt">{fault.code}</p:error_Code>'
        '<p:error_Type xsi:type="cim:cimString">HRESULT</p:error_Type>'
        "</p:MSFT_WmiError>"
    )


def create_response(req: Request, address: str, shell_id: str, owner: str, client_ip: str,
                    input_streams: str, output_streams: str) -> bytes:
    body = (
        "<x:ResourceCreated>"
        f"<a:Address>{escape(address)}</a:Address>"
        "<a:ReferenceParameters>"
        f"<w:ResourceURI>{RESOURCE_CMD}</w:ResourceURI>"
        f'<w:SelectorSet><w:Selector Name="ShellId">{escape(shell_id)}</w:Selector></w:SelectorSet>'
        "</a:ReferenceParameters>"
        "</x:ResourceCreated>"
        f'<rsp:Shell xmlns:rsp="{SHELL}">'
        f"<rsp:ShellId>{escape(shell_id)}</rsp:ShellId>"
        f"<rsp:ResourceUri>{RESOURCE_CMD}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(owner)}</rsp:Owner>"
        f"<rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
        "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
        f"<rsp:InputStreams>{escape(input_streams)}</rsp:InputStreams>"
        f"<rsp:OutputStreams>{escape(output_streams)}</rsp:OutputStreams>"
        "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
        "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
        "</rsp:Shell>"
    )
    return envelope(ACTION_CREATE + "Response", req.message_id, body)


def command_response(req: Request, command_id: str) -> bytes:
    body = f"<rsp:CommandResponse><rsp:CommandId>{escape(command_id)}</rsp:CommandId></rsp:CommandResponse>"
    return envelope(ACTION_COMMAND + "Response", req.message_id, body)


def send_response(req: Request) -> bytes:
    return envelope(ACTION_SEND + "Response", req.message_id, "<rsp:SendResponse/>")


def receive_response(req: Request, command_id: str, chunks: List[Tuple[str, bytes, bool]],
                     exit_code: Optional[int]) -> bytes:
    """``chunks``: (stream name, data, end of stream); ``exit_code`` None while still running."""
    cid = quoteattr(command_id)
    parts = ["<rsp:ReceiveResponse>"]
    for name, data, end in chunks:
        end_attr = ' End="true"' if end else ""
        parts.append(f'<rsp:Stream Name="{name}" CommandId={cid}{end_attr}>'
                     f"{base64.b64encode(data).decode('ascii')}</rsp:Stream>")
    if exit_code is None:
        parts.append(f'<rsp:CommandState CommandId={cid} State="{STATE_RUNNING}"/>')
    else:
        parts.append(f'<rsp:CommandState CommandId={cid} State="{STATE_DONE}">'
                     f"<rsp:ExitCode>{int(exit_code)}</rsp:ExitCode></rsp:CommandState>")
    parts.append("</rsp:ReceiveResponse>")
    return envelope(ACTION_RECEIVE + "Response", req.message_id, "".join(parts))


def signal_response(req: Request) -> bytes:
    return envelope(ACTION_SIGNAL + "Response", req.message_id, "<rsp:SignalResponse/>")


def delete_response(req: Request) -> bytes:
    return envelope(ACTION_DELETE + "Response", req.message_id, "")
