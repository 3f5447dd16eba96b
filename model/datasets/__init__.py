"""Loaders: each real dataset format (and the synthetic log) into events or an interactions frame."""

from pathlib import Path


def shared_data_dir() -> Path:
    """The datasets' root: `Settings.data_dir` (STREAMREC_DATA_DIR, default the repository's ../shared/data)."""
    from streamrec.settings import Settings

    return Settings().data_dir.resolve()
