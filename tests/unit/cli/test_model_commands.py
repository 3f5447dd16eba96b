"""`streamrec train --model NAME` saves any offline model where the worker looks; `recommend` serves the newest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from model.bundle_paths import newest_bundle, read_manifest
from streamrec.settings import get_settings


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch) -> Iterator[Path]:
    """STREAMREC_MODEL_DIR for this test; the process-wide settings are read again with it, and after it."""
    monkeypatch.setenv("STREAMREC_MODEL_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_train_saves_the_named_model_and_recommend_loads_the_newest(model_dir: Path):
    tmp_path = model_dir
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", "sim:3000:5", "--model", "session-knn", "--out", str(tmp_path)])
    assert trained.exit_code == 0, trained.output
    saved = newest_bundle(tmp_path)
    assert saved is not None and read_manifest(saved).kind == "session-knn"

    answered = runner.invoke(app, ["recommend", "someone", "--k", "3", "--item", "p00001"])
    assert answered.exit_code == 0, answered.output
    assert "session-knn" in answered.output and answered.output.count("│ p") == 3


def test_train_refuses_a_model_that_learns_from_the_stream(tmp_path: Path):
    result = CliRunner().invoke(app, ["train", "--data", "sim:500", "--model", "session-cooccurrence",
                                      "--out", str(tmp_path)])
    assert result.exit_code != 0 and "not fitted offline" in result.output
    assert newest_bundle(tmp_path) is None
