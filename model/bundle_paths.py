"""Where bundles live on disk: version names (UTC timestamps that sort by age) and finding the newest.

Kept free of TensorFlow so the worker can look for bundles without loading it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

CONFIG = "config.json"  # written last: a folder with it is a complete bundle


def new_version(model_dir: Path) -> str:
    """A UTC timestamp to the millisecond, bumped if a bundle of that name exists already."""
    now = datetime.now(UTC)
    version = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    while (model_dir / version).exists():
        now = now.replace(microsecond=(now.microsecond + 1000) % 1_000_000)
        version = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    return version


def list_bundles(model_dir: Path) -> list[Path]:
    """Complete bundles under `model_dir`, oldest first (partial ones have no config yet)."""
    if not model_dir.is_dir():
        return []
    return sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / CONFIG).exists())


def newest_bundle(model_dir: Path) -> Path | None:
    bundles = list_bundles(model_dir)
    return bundles[-1] if bundles else None
