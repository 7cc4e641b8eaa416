"""Where a published database's state lives: the files beside it (docs/state.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Parquet compression of the large files a run writes for its next steps (and of the staged
# days the next night reads again): lz4 writes and reads faster than Polars' default zstd, for
# ~1.5x the bytes. The 1M benchmark's 1,004,795 prepared interactions: written in 1.07-1.13 s
# instead of 1.55-1.96 s, read in 0.34-0.39 s instead of 0.46-0.52 s, 113 MB instead of 72 MB.
# At 10M interactions the zstd write of that file alone took 28.4 s.
WORK_COMPRESSION = "lz4"


@dataclass(frozen=True)
class StateLayout:
    """Files that belong to one published database."""

    db_path: Path

    @property
    def state_dir(self) -> Path:
        return self.db_path.with_name(self.db_path.name + ".state")

    def staging_dir(self, source: str, day: str) -> Path:
        return self.state_dir / "staging" / source / day

    @property
    def staging_root(self) -> Path:
        return self.state_dir / "staging"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"

    def work_file(self, name: str) -> Path:
        return self.work_dir / name

    @property
    def cache_dir(self) -> Path:
        """What a run reuses from the last one to save work (derived; safe to delete)."""
        return self.state_dir / "cache"

    @property
    def build_path(self) -> Path:
        return self.work_dir / "snapshot.building.duckdb"

    @property
    def decisions_path(self) -> Path:
        return self.state_dir / "decisions.duckdb"

    @property
    def api_keys_path(self) -> Path:
        return self.state_dir / "api_keys.json"

    @property
    def views_path(self) -> Path:
        """Saved Contact Views (user state, never inside the rebuilt snapshot)."""
        return self.state_dir / "views.json"

    @property
    def output_dir(self) -> Path:
        """Nightly exports and quality reports (GX data docs) for people to open."""
        return self.state_dir / "output"

    def ensure(self) -> StateLayout:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.staging_root.mkdir(parents=True, exist_ok=True)
        # Staging, work files and the decision log hold personal data: other users may not enter
        # the folder (its owner and group keep what they had; docs/privacy.md).
        mode = self.state_dir.stat().st_mode & 0o777
        if mode & 0o007:
            self.state_dir.chmod(mode & 0o770)
        return self
