"""Loaders: each real dataset format (and the synthetic log) into events or an interactions frame."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def shared_data_dir() -> Path:
    """`../shared/data` relative to the repository root (override with STREAMREC_DATA_DIR)."""
    import os

    return Path(os.environ.get("STREAMREC_DATA_DIR", SHARED_DATA)).resolve()
