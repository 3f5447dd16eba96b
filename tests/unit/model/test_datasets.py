"""Dataset loaders for evaluation: REES46 events, YooChoose session-rec clicks, MovieLens atomic ratings."""

from __future__ import annotations

from collections import Counter

import pytest

from model.datasets import movielens, rees46, shared_data_dir, yoochoose

pytestmark = pytest.mark.data


def _need(folder: str):
    path = shared_data_dir() / folder
    if not path.exists():
        pytest.skip(f"dataset folder {path} is absent (see ../shared/data/README.md)")
    return path


def test_rees46_rows_become_typed_events_with_attributes():
    events = rees46.load_events(_need("rees46-slice") / "events.parquet")
    assert Counter(e.type for e in events) == {"page_view": 17_055, "purchase": 214, "add_to_cart": 165}
    assert all(e.category for e in events)  # category_code, else the numeric category id
    assert all(a.ts <= b.ts for a, b in zip(events, events[1:], strict=False))
    assert len({e.event_id for e in events}) == len(events)


def test_yoochoose_clicks_are_sessions_in_time_order():
    test = yoochoose.load_clicks(yoochoose.split_path("test", _need("yoochoose-100k-sessionrec").parent))
    assert len(test) == 13_568
    train = yoochoose.load_clicks(yoochoose.split_path("train_full"))
    assert train["ts"].max() < test["ts"].max()
    events = list(yoochoose.click_events(test.head(50)))
    assert all(e.user_id == e.session_id and e.item_id for e in events)


def test_movielens_ratings_as_interactions():
    ratings = movielens.load_ratings(_need("movielens-100k") / "ml-100k.inter")
    frame = movielens.interactions(ratings)
    assert len(frame) == 100_000
    assert frame["user_id"].nunique() == 943 and frame["item_id"].nunique() == 1682
    assert frame["ts"].is_monotonic_increasing


def test_every_loader_reads_its_default_folder_from_the_one_data_dir_setting(tmp_path, monkeypatch):
    from model.datasets import asos_frame, srgnn

    monkeypatch.setenv("STREAMREC_DATA_DIR", str(tmp_path))
    assert shared_data_dir() == tmp_path.resolve()
    assert yoochoose.split_path("test").is_relative_to(tmp_path)
    assert movielens.default_path().is_relative_to(tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        srgnn.dataset_dir("diginetica")
    with pytest.raises(FileNotFoundError, match="asos-dsf2020"):
        asos_frame.asos_train_valid()


def test_data_dir_defaults_to_the_repositorys_shared_data(monkeypatch):
    from pathlib import Path

    monkeypatch.delenv("STREAMREC_DATA_DIR", raising=False)
    repo = Path(__file__).resolve().parents[3]
    assert shared_data_dir() == (repo.parent / "shared" / "data").resolve()
