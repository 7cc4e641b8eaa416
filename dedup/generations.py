"""Kept caches written as generations (the profile cache, the identity index).

A generation's Parquet files are named `<name>-<gen>.parquet`. `state.json` names the
generation and the token it was built under, and is renamed over last, then older generations'
files are deleted. A reader sees the last whole generation; a kill at any point leaves the one
before (or, after the rename, the new one with stale files beside it)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import polars as pl

from dedup.layout import WORK_COMPRESSION

STATE_FILE = "state.json"


def kept_state(root: Path) -> dict | None:
    """`state.json` under `root` ({"token", "gen"}), None when missing or unreadable."""
    try:
        return json.loads((root / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_generation(root: Path, token: str, frames: dict[str, pl.DataFrame]) -> None:
    """A new generation: its files, then `state.json` naming it, then older files gone."""
    root.mkdir(parents=True, exist_ok=True)
    gen = uuid.uuid4().hex[:16]
    for name, frame in frames.items():
        frame.write_parquet(root / f"{name}-{gen}.parquet", compression=WORK_COMPRESSION)
    tmp = root / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps({"token": token, "gen": gen}))
    tmp.replace(root / STATE_FILE)
    for old in root.glob("*.parquet"):
        if not old.name.endswith(f"-{gen}.parquet"):
            old.unlink()
