# fix-xcon action plugin: the controller-side implementation of library/xcon_link_gate.py.
# The code lives in module_utils/xcon/actions/ (a plain package, also used by the tests); custom
# module_utils are not importable from controller plugins outside a collection, hence the path.
from __future__ import annotations

import os
import sys

_MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "module_utils")
if _MODULE_UTILS not in sys.path:
    sys.path.insert(0, _MODULE_UTILS)

from xcon.actions.link_gate import ActionModule  # noqa: E402,F401  pylint: disable=wrong-import-position
