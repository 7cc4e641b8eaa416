"""Tokens for work kept between nights: what the kept rows depend on besides the rows themselves.

A cache of normalized days or of contact profiles is valid while the settings it was built
with and the code that built it are unchanged; the token hashes both, so a release that changes
that code (or a library version named in `parts`) rebuilds everything once. Imports nothing
else from `dedup`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType


def code_token(parts: Iterable[object], modules: Iterable[ModuleType]) -> str:
    """SHA-256 over `parts` (each as text, NUL-separated) and the source of `modules`."""
    h = hashlib.sha256()
    for part in parts:
        h.update(f"{part}\0".encode())
    for module in modules:
        h.update(Path(module.__file__ or "").read_bytes())
    return h.hexdigest()
