"""`require` from tests/conftest.py, importable whatever other conftest.py files exist.

pytest imports every conftest.py of a folder without `__init__.py` as the module
`conftest`, so in a session that also loads tests/devcluster/apiserver/conftest.py,
`from conftest import require` can find that file instead. This loads the suite's
own conftest.py by path under a name of its own.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "seccomp_tests_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
assert _SPEC is not None
assert _SPEC.loader is not None
_MODULE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_MODULE)

require: Callable[[bool, str], None] = _MODULE.require
IN_CI: bool = _MODULE.IN_CI
