"""The lab's twin of the runner's JSON reader (files/ps/lib_json.ps1, ConvertFrom-XconJson), which
the lab uses to read a request the way the script reads it. Its semantics come from .NET 2.0 and
the PowerShell 2.0 documentation, for the constructs the script uses (tests/unit/test_json_contract.py
reads them from the script and compares them with the constants below):

* an object is a ``System.Collections.Hashtable`` built with ``StringComparer.Ordinal``: member
  names are case-sensitive (``{"cn": 1, "CN": 2}`` keeps both; PowerShell's ``@{}`` would fold
  them), and a repeated name keeps the last value (the indexer's set);
* nesting has no limit: the reader keeps an explicit stack (a recursive reader stops at
  PowerShell 2.0's call depth of 100, ScriptCallDepthException);
* a number without fraction or exponent is an Int32 when it fits, else an Int64 when it fits
  (``Int64.TryParse``), else a Double; a number beyond Double's range is +/-Infinity
  (``Double.TryParse`` returns false on overflow in .NET 2.0, where ``Double.Parse`` throws);
* only ``true``, ``false`` and ``null`` are literals (no NaN / Infinity); a raw control character
  in a string is refused.
"""
from __future__ import annotations

import json

KEY_COMPARER = "ordinal"
MAX_DEPTH = None            # no limit
NUMBER_OVERFLOW = "infinity"
INT64 = (-(2 ** 63), 2 ** 63 - 1)


class JsonError(ValueError):
    """The request is not JSON the runner can read (its message, as the runner words it)."""


def _integer(text: str):
    value = int(text)
    return value if INT64[0] <= value <= INT64[1] else float(text)


def _constant(name: str):
    raise JsonError(f"unexpected character '{name[0]}' in JSON")


def read(text: str):
    """The request document as the script reads it."""
    try:
        return json.loads(text, parse_int=_integer, parse_constant=_constant)
    except JsonError:
        raise
    except ValueError as exc:
        raise JsonError(str(exc)) from None
