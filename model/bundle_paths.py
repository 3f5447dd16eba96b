"""Where saved models live on disk: version names (UTC timestamps that sort by age), the manifest that names
each saved model's kind, publishing a new version atomically, and finding the newest.

Kept free of TensorFlow so the worker can look for models without loading it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

CONFIG = "config.json"  # a two-tower bundle's config; a bundle saved before manifests existed has only this
MANIFEST = "model.json"  # written last: a folder with it is a complete saved model


class SavedModelManifest(BaseModel):
    """What a saved model folder holds: the kind `model.saved_models.load_recommender` dispatches on."""

    kind: str
    version: str = ""  # the version folder's name once published under a model dir
    format: int = 1


def write_manifest(folder: Path, kind: str, version: str = "") -> None:
    """Mark `folder` as a complete saved model of `kind` (call it after every other file is written)."""
    (folder / MANIFEST).write_text(SavedModelManifest(kind=kind, version=version).model_dump_json())


def read_manifest(folder: Path) -> SavedModelManifest:
    """The folder's manifest; a folder with only a bundle config is a two-tower bundle from before manifests."""
    if (folder / MANIFEST).exists():
        return SavedModelManifest.model_validate_json((folder / MANIFEST).read_text())
    if (folder / CONFIG).exists():
        return SavedModelManifest(kind="two-tower")
    raise FileNotFoundError(f"{folder} is not a saved model: it has neither {MANIFEST} nor {CONFIG}")


def new_version(model_dir: Path) -> str:
    """A UTC timestamp to the millisecond, bumped if a bundle of that name exists already."""
    now = datetime.now(UTC)
    version = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    while (model_dir / version).exists():
        now = now.replace(microsecond=(now.microsecond + 1000) % 1_000_000)
        version = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    return version


def publish_version(model_dir: Path, write: Callable[[Path, str], None], version: str = "") -> Path:
    """Run `write(folder, version)` on a hidden folder, then rename it to `model_dir/<version>` (a new version
    when none is given), so a worker looking for models never finds half of one; returns the final folder."""
    model_dir.mkdir(parents=True, exist_ok=True)
    version = version or new_version(model_dir)
    final = model_dir / version
    partial = model_dir / f".partial-{version}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    write(partial, version)
    os.replace(partial, final)
    return final


def is_complete(folder: Path) -> bool:
    """A saved model whose manifest (or, for a bundle from before manifests, config) is written."""
    return (folder / MANIFEST).exists() or (folder / CONFIG).exists()


def list_bundles(model_dir: Path) -> list[Path]:
    """Complete saved models of every kind under `model_dir`, oldest first (partial ones are hidden)."""
    if not model_dir.is_dir():
        return []
    return sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and is_complete(p))


def newest_bundle(model_dir: Path) -> Path | None:
    """The newest complete saved model under `model_dir` (any kind), None when there is none."""
    bundles = list_bundles(model_dir)
    return bundles[-1] if bundles else None
