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
