"""The ASOS protocol: one frame, train purchases excluded, each valid user scored once, one report."""

from __future__ import annotations

import pandas as pd
import pytest

from measurement.evaluation.asos import run_asos_protocol
from measurement.report import write_report
from model.datasets import asos


def _write(folder, name: str, pairs: list[tuple[str, str]]) -> None:
    frame = pd.DataFrame({"dummyUserId": [u.encode() for u, _ in pairs], "productId": [int(i) for _, i in pairs]})
    frame.to_parquet(folder / name)


@pytest.fixture
def asos_folder(tmp_path):
    # item 1 is the most bought; u1 already has it, so u1's list must skip it and start at item 2
    _write(tmp_path, asos.TRAIN, [("u1", "1"), ("u2", "1"), ("u3", "1"), ("u2", "2"), ("u3", "2"), ("u3", "3")])
    _write(tmp_path, asos.VALID, [("u1", "2"), ("u2", "1"), ("u4", "3")])
    return tmp_path


def test_popularity_is_scored_per_valid_user_with_train_purchases_excluded(asos_folder, tmp_path):
    result = run_asos_protocol(["popularity"], data_dir=asos_folder, progress=False)
    value = {(r.metric, r.k): r.value for r in result.rows if r.model == "popularity" and r.target == "holdout"}
    # u1: list 2, 3 (1 bought) -> hit at rank 1; u4: list 1, 2, 3 -> 3 at rank 3; u2 re-bought 1: nothing new
    assert result.info["valid_users"] == 2
    assert value[("HR", 1)] == pytest.approx(0.5)
    assert value[("MRR", 5)] == pytest.approx((1 + 1 / 3) / 2)
    written = write_report(result, tmp_path / "report")
    assert {"markdown", "csv", "json"} <= set(written)
    assert "popularity" in written["markdown"].read_text()

