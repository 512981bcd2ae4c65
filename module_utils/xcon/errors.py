"""Map failures to the report's host-level codes and one-line, actionable reasons."""

from __future__ import annotations

UNREACHABLE = "XCON-UNREACHABLE"
ACCESS_DENIED = "XCON-ACCESS-DENIED"
FAILED = "XCON-OPERATION-FAILED"


def error_code(exc: BaseException) -> str:
    """The report code for a failure talking to a host."""
    name = type(exc).__name__
    category = getattr(exc, "category", "")
    if name in ("XconUnreachable",):
        return UNREACHABLE
    if name in ("XconAuthError",) or category == "AccessDenied":
        return ACCESS_DENIED
    return FAILED


def error_reason(exc: BaseException) -> str:
    """A one-line reason that says what failed and, where known, what to do."""
    text = str(exc).strip() or type(exc).__name__
    code = error_code(exc)
    if code == ACCESS_DENIED and "credential" not in text.lower() and "denied" not in text.lower():
        text = f"access denied: {text}"
    return text.splitlines()[0] if text else text
