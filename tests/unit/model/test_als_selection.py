"""ALS settings chosen on a holdout of train: the argmax of the holdout objective, blind to the scored split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from measurement.evaluation.asos import run_asos_protocol
from model.baselines.als_selection import AlsSettings, choose_als_settings
from model.datasets import asos
from model.holdout_scoring import held_out_purchases, score_users
from model.interactions import COLUMNS
from model.metrics import metric_value

# Two blocks of co-bought items; block B is bought by more users. Two factors see the blocks, one factor
# only sees popularity (every user gets block B first).
GOOD = AlsSettings(factors=2, regularization=0.05, alpha=4.0, iterations=20)
BAD = AlsSettings(factors=1, regularization=0.05, alpha=4.0, iterations=20)
BLOCK = 30


@pytest.fixture(autouse=True)
def _small_holdouts_count(monkeypatch):
    """These frames hold out a few users on purpose: the searches below must run on them."""
    monkeypatch.setattr("model.baselines.als_selection.MIN_HOLDOUT_USERS", 1)


def test_with_fewer_held_out_users_than_the_minimum_no_choice_is_made(monkeypatch):
    monkeypatch.setattr("model.baselines.als_selection.MIN_HOLDOUT_USERS", 10_000)
    selection = choose_als_settings(_frame(_purchases()), [BAD, GOOD], user_fraction=0.5, threads=1)
    assert selection.chosen == BAD and selection.candidates == [] and selection.holdout_users == 0


def _frame(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    n = len(pairs)
    frame = pd.DataFrame({
        "event_id": [f"e{i}" for i in range(n)], "user_id": [u for u, _ in pairs],
        "session_id": [f"s-{u}" for u, _ in pairs],
        "ts": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="ms"),
        "event_type": "purchase", "kind": "product", "item_id": [i for _, i in pairs], "category": None,
        "brand": None, "price": np.nan,
    })
    return frame[COLUMNS]


def _block(user: int) -> str:
    return "a" if user < 30 else "b"  # 30 users in block a, 60 in block b


def _purchases(seed: int = 3, other_block: bool = False, per_user: int = 8) -> list[tuple[str, str]]:
    """Each of 90 users buys `per_user` random items of their block (of the other block when `other_block`)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for u in range(90):
        block = _block(u)
        if other_block:
            block = "b" if block == "a" else "a"
        pairs += [(f"u{u}", f"{block}{i}") for i in rng.choice(BLOCK, size=per_user, replace=False)]
    return pairs


def test_the_chosen_settings_are_the_argmax_of_the_holdout_objective() -> None:
    grid = [BAD, GOOD, AlsSettings(factors=3, regularization=1.0, alpha=1.0, iterations=10)]
    selection = choose_als_settings(_frame(_purchases()), grid, user_fraction=0.5, threads=1)

    assert [c.settings for c in selection.candidates] == grid
    best = max(selection.candidates, key=lambda c: c.recall_at_20 + c.ndcg_at_10)
    assert selection.chosen == best.settings
    assert selection.table()[0]["chosen"] and sum(row["chosen"] for row in selection.table()) == 1
    assert selection.holdout_users > 0 and selection.fit_rows + selection.held_out_rows == 90 * 8


def test_a_planted_structure_is_found_and_beats_a_deliberately_bad_setting() -> None:
    selection = choose_als_settings(_frame(_purchases()), [BAD, GOOD], user_fraction=0.5, threads=1)

    scores = {c.settings: c for c in selection.candidates}
    assert selection.chosen == GOOD
    # Held-out items lie in the user's block: the one-factor model hands block-a users block b.
    assert scores[GOOD].recall_at_20 > scores[BAD].recall_at_20 + 0.1
    assert scores[GOOD].ndcg_at_10 > scores[BAD].ndcg_at_10


@pytest.fixture
def asos_folder(tmp_path):
    def write(name: str, pairs: list[tuple[str, str]]) -> None:
        frame = pd.DataFrame({"dummyUserId": [u.encode() for u, _ in pairs],
                              "productId": [int(i[1:]) + (0 if i[0] == "a" else 1000) for _, i in pairs]})
        frame.to_parquet(tmp_path / name)

    # valid asks the opposite of train: every user buys in the other block, which only popularity finds for a-users
    write(asos.TRAIN, _purchases())
    write(asos.VALID, _purchases(seed=5, other_block=True, per_user=3))
    return tmp_path


def test_the_choice_is_made_on_train_alone_even_where_valid_would_choose_otherwise(asos_folder) -> None:
    from model.datasets.asos_frame import asos_train_valid

    train, valid = asos_train_valid(asos_folder)
    held = held_out_purchases(train, valid)

    def on_valid(settings: AlsSettings) -> float:
        rows = score_users("als", settings.recommender(threads=1).fit(train), held, ks=(10, 20), progress=False)
        return metric_value(rows, "recall", 20) + metric_value(rows, "NDCG", 10)

    assert on_valid(BAD) > on_valid(GOOD)  # valid, had it been looked at, would pick the bad setting

    result = run_asos_protocol(["als", "als-tuned"], data_dir=asos_folder, progress=False, als_grid=[BAD, GOOD])
    tuned = result.info["als_tuned"]
    assert tuned["chosen"] == GOOD.model_dump()
    assert tuned["held_out_rows"] + tuned["fit_rows"] == len(train)
    assert result.models == ["als", "als-tuned"]
    values = {(r.model, r.metric, r.k) for r in result.rows if r.target == "holdout"}
    assert ("als-tuned", "recall", 20) in values and ("als", "recall", 20) in values


# --- als-tuned as a served model, and the hybrid's ALS source ---------------------------------------------------
PLANTED_GRID = [BAD, GOOD]  # the bad setting first: a build that skipped the choice would keep it (or the defaults)


def _requests() -> list:
    from model.recommender import RecommendationRequest

    return [RecommendationRequest(f"u{u}", 10) for u in (0, 5, 29, 30, 61, 89)] + [RecommendationRequest("new", 5)]


def test_the_registry_als_tuned_serves_the_setting_its_holdout_chose_and_loads_back_the_same(tmp_path) -> None:
    from model.baselines.als_selection import TunedAlsRecommender
    from model.bundle_paths import read_manifest
    from model.registry import ModelContext, get_spec
    from model.saved_models import load_recommender, publish_model

    train = _frame(_purchases())
    model = get_spec("als-tuned").build(ModelContext(train=train, als_grid=PLANTED_GRID))

    assert isinstance(model, TunedAlsRecommender) and model.name == "als-tuned"
    assert model.selection is not None and model.selection.chosen == GOOD
    assert model.settings == GOOD  # refitted with the choice, not implicit's defaults
    assert np.asarray(model.kinds["product"].model.item_factors).shape[1] == GOOD.factors
    assert model.selection.fit_rows + model.selection.held_out_rows == len(train)  # chosen on its own frame

    path = publish_model(model, tmp_path)
    assert read_manifest(path).kind == "als-tuned"
    loaded = load_recommender(path)
    assert isinstance(loaded, TunedAlsRecommender) and loaded.name == "als-tuned"
    assert loaded.settings == GOOD and loaded.selection == model.selection
    assert [[s.item_id for s in r] for r in loaded.recommend_batch(_requests())] == \
        [[s.item_id for s in r] for r in model.recommend_batch(_requests())]


def test_als_tuned_searches_the_default_grid_unless_told_otherwise() -> None:
    from model.baselines.als_selection import default_grid
    from model.registry import ModelContext, get_spec

    model = get_spec("als-tuned").build(ModelContext(train=_frame(_purchases())))

    assert [c.settings for c in model.selection.candidates] == default_grid()
    assert model.settings == model.selection.chosen


def test_without_purchases_to_hold_out_nothing_is_fitted_and_the_grids_first_entry_stands() -> None:
    one_each = _frame([(f"u{u}", f"a{u}") for u in range(20)])  # no user has two purchases

    selection = choose_als_settings(one_each, PLANTED_GRID, threads=1)

    assert selection.chosen == BAD and selection.candidates == [] and selection.holdout_users == 0


def _hybrid_als(train: pd.DataFrame, **als):
    import redis

    from consumers.training.hybrid_training import hybrid_sources
    from model.hybrid.item_stats import ItemStats

    client = redis.Redis(port=1)  # never reached: the streaming sources only keep the client until they serve
    return hybrid_sources(train, client, "test:", ItemStats(), neural=False, **als)["als"]


def test_the_hybrids_als_source_fits_the_settings_chosen_on_the_hybrids_own_frame() -> None:
    train = _frame(_purchases())

    tuned = _hybrid_als(train, als_grid=PLANTED_GRID)
    untuned = _hybrid_als(train)

    assert tuned.selection.chosen == GOOD
    assert {k: tuned.params[k] for k in ("factors", "regularization", "alpha", "iterations")} == GOOD.model_dump()
    assert tuned.selection.fit_rows + tuned.selection.held_out_rows == len(train)
    assert untuned.params["factors"] == 100 and untuned.params["alpha"] == 1.0  # off: implicit's defaults


def test_train_hybrid_chooses_on_the_part_before_the_logged_stretch(monkeypatch) -> None:
    import consumers.training.hybrid_training as hybrid_training
    from streamrec.settings import Settings

    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def sources(train, *args, als_grid=None, **kwargs):
        seen.update(train=train, als_grid=als_grid)
        raise Stop

    class NoKeys:  # the scratch namespace is cleaned before and after; there is nothing in it here
        def scan_iter(self, **_):
            return iter(())

    monkeypatch.setattr(hybrid_training, "hybrid_sources", sources)
    train = _frame(_purchases())
    with pytest.raises(Stop):
        hybrid_training.train_hybrid(train, NoKeys(), "test:", Settings(), log_events=200, neural=False,
                                     progress=False, als_grid=PLANTED_GRID)

    assert seen["als_grid"] == PLANTED_GRID
    assert len(seen["train"]) == len(train) - 200  # the sources' frame, not the logged stretch


def test_publish_hybrid_tunes_the_als_source_only_when_asked(monkeypatch) -> None:
    import consumers.training.hybrid_training as hybrid_training
    from model.baselines.als_selection import compact_grid
    from streamrec.settings import Settings

    grids: list[object] = []

    class Stop(Exception):
        pass

    def train_hybrid(*args, als_grid=None, **kwargs):
        grids.append(als_grid)
        raise Stop

    monkeypatch.setattr(hybrid_training, "train_hybrid", train_hybrid)
    for tune in (False, True):
        with pytest.raises(Stop):
            hybrid_training.publish_hybrid(_frame(_purchases()), None, Settings(), tune_als=tune, progress=False)

    assert grids == [None, compact_grid()]
    assert len(compact_grid()) == 5 and compact_grid()[0] == AlsSettings()


def _record_tune_als(monkeypatch, module, name: str, answer: object = None) -> list[bool]:
    """Replace `module.name` by a stub that records the `tune_als` it is called with, then returns `answer` (or
    raises it, when it is an exception: a way to stop before the real work)."""
    asked: list[bool] = []

    def stub(*args, tune_als=False, **kwargs):
        asked.append(tune_als)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(module, name, stub)
    return asked


def _invoke_with_each_tune_als_flag(args: list[str]) -> list:
    """The CLI run with no flag, with --tune-als and with --no-tune-als: the three results."""
    from typer.testing import CliRunner

    from cli import app

    return [CliRunner().invoke(app, [*args, *flags]) for flags in ([], ["--tune-als"], ["--no-tune-als"])]


def test_streamrec_train_threads_tune_als_to_the_hybrid(monkeypatch, tmp_path) -> None:
    import consumers.training.hybrid_training as hybrid_training

    asked = _record_tune_als(monkeypatch, hybrid_training, "publish_hybrid", RuntimeError("stop here"))
    _invoke_with_each_tune_als_flag(["train", "--data", "sim:500", "--model", "hybrid", "--out", str(tmp_path)])
    assert asked == [False, True, False]


def test_streamrec_trainer_threads_tune_als_to_each_round(monkeypatch) -> None:
    import consumers.training.trainer as trainer

    asked = _record_tune_als(monkeypatch, trainer, "run_trainer", [])
    for result in _invoke_with_each_tune_als_flag(["trainer", "--rounds", "1"]):
        assert result.exit_code == 0, result.output
    assert asked == [False, True, False]


def test_a_trainer_round_passes_tune_als_to_the_hybrid(monkeypatch, tmp_path) -> None:
    import consumers.training.trainer as trainer
    from streamrec.events import PageView
    from streamrec.settings import Settings

    asked = _record_tune_als(monkeypatch, trainer, "publish_hybrid", RuntimeError("stop here"))
    monkeypatch.setattr(trainer, "read_topic_events", lambda *a, **k: [PageView(user_id="u", session_id="s",
                                                                                 item_id=f"p{i}") for i in range(3)])
    with pytest.raises(RuntimeError, match="stop here"):
        trainer.train_once(Settings(), "events", 3600, tmp_path, min_events=1, tune_als=True)
    assert asked == [True]
