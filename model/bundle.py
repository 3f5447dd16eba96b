"""A versioned model bundle: config + vocabularies, tower and ranker weights, item vectors, FAISS index, metrics.

Layout of one bundle (a folder named by its version, a UTC timestamp, so names sort by age):
    config.json            BundleConfig: hyperparameters and the feature spec (vocabularies, item attributes)
    query_tower.weights.h5 / item_tower.weights.h5 / ranker.weights.h5
    item_vectors.npy       item-tower output per vocabulary index
    items.faiss            the index over those vectors
    user_history.json      each training user's latest items, for requests that come without session context
    metrics.json           training and evaluation figures
    model.json             the manifest (kind "two-tower", version), written last
A bundle is written under a hidden temporary name and renamed when complete, so a worker never loads half of one.
This is the saved form of the two-tower kind (`model.saved_models.load_recommender`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
from pydantic import BaseModel, Field

from model.bundle_paths import CONFIG, publish_version, write_manifest
from model.index.faiss_index import ItemIndex
from model.ranking.features import RankerConfig
from model.ranking.wide_deep import build_ranker
from model.two_tower.features import FeatureSpec
from model.two_tower.towers import Towers, TwoTowerConfig, build_towers

BUNDLE_FORMAT = 1
KIND = "two-tower"  # the saved-model kind of a bundle (its manifest)


class BundleConfig(BaseModel):
    """Everything needed to rebuild the trained models exactly (weights aside)."""

    format: int = BUNDLE_FORMAT
    name: str = "two-tower"
    version: str = ""
    created_at: datetime
    two_tower: TwoTowerConfig
    ranker: RankerConfig | None = None
    spec: FeatureSpec
    index_kind: str = "flat"
    popularity_prior: float = Field(0.0, description="w in retrieval score = q.v + w * log q(item)")
    serve_ranker: bool = Field(True, description="Rank candidates with the ranker (it beat retrieval alone)")
    ranker_blend: float = Field(0.0, description="Final score = ranker logit + blend * retrieval logit")
    trained_on: str = ""


@dataclass
class ModelBundle:
    config: BundleConfig
    towers: Towers
    item_vectors: np.ndarray
    index: ItemIndex
    ranker: keras.Model | None = None
    user_history: dict[str, list[str]] = field(default_factory=dict)
    metrics: dict[str, object] = field(default_factory=dict)
    path: Path | None = None

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def spec(self) -> FeatureSpec:
        return self.config.spec

    def save(self, model_dir: Path) -> Path:
        """Write atomically as `model_dir/<version>` (a new version when none is set); returns the folder."""

        def write(folder: Path, version: str) -> None:
            self.config.version = version
            self.write(folder)

        self.path = publish_version(model_dir, write, self.config.version)
        return self.path

    def write(self, folder: Path) -> None:
        """Every file of the bundle into `folder` (which must exist), the config and then the manifest last."""
        self.towers.query.save_weights(folder / "query_tower.weights.h5")
        self.towers.item.save_weights(folder / "item_tower.weights.h5")
        if self.ranker is not None:
            self.ranker.save_weights(folder / "ranker.weights.h5")
        np.save(folder / "item_vectors.npy", self.item_vectors)
        self.index.save(folder / "items.faiss")
        (folder / "user_history.json").write_text(json.dumps(self.user_history))
        (folder / "metrics.json").write_text(json.dumps(self.metrics, indent=2, default=str))
        (folder / CONFIG).write_text(self.config.model_dump_json())
        write_manifest(folder, KIND, self.config.version)

    @classmethod
    def load(cls, path: Path) -> ModelBundle:
        """Rebuild the models from the saved config, then load their weights."""
        config = BundleConfig.model_validate_json((path / CONFIG).read_text())
        towers = build_towers(config.spec, config.two_tower)
        towers.query.load_weights(path / "query_tower.weights.h5")
        towers.item.load_weights(path / "item_tower.weights.h5")
        ranker = None
        if config.ranker is not None and (path / "ranker.weights.h5").exists():
            ranker = build_ranker(config.spec, config.ranker)
            ranker.load_weights(path / "ranker.weights.h5")
        metrics_path = path / "metrics.json"
        return cls(
            config=config, towers=towers, item_vectors=np.load(path / "item_vectors.npy"),
            index=ItemIndex.load(path / "items.faiss"), ranker=ranker,
            user_history=json.loads((path / "user_history.json").read_text()),
            metrics=json.loads(metrics_path.read_text()) if metrics_path.exists() else {}, path=path,
        )
