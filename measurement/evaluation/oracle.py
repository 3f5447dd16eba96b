"""The oracle: a recommender that knows the synthetic world's planted tastes (an upper reference, not a model)."""

from __future__ import annotations

import numpy as np

from model.recommender import RecommendationRequest, Recommender, ScoredItem
from model.registry import ModelContext, ModelSpec, ModelUnavailable, register_model
from producers.synthetic_world import SyntheticWorld
from streamrec.events import TOOL


class OracleRecommender(Recommender):
    """Products by planted affinity; tools by the planted workflow from the trigger tool times the user's taste."""

    name = "oracle"
    version = "truth"

    def __init__(self, world: SyntheticWorld) -> None:
        self.world = world
        self._user_index = {u: i for i, u in enumerate(world.user_ids)}
        self._tool_index = {t: i for i, t in enumerate(world.tool_ids)}
        self._fallback = np.asarray(world.product_popularity, dtype=float)

    def _user(self, user_id: str) -> int | None:
        # Live simulations prefix ids with a run id ("<run>-u00012"); the planted user is the suffix.
        return self._user_index.get(user_id, self._user_index.get(user_id.rsplit("-", 1)[-1]))

    def _day(self, now_ms: int) -> float:
        """The traffic day of a request: 0 when the truth has no start (a live run with wall-clock times)."""
        start = self.world.traffic_start_ms
        return 0.0 if start is None or not now_ms else max(0.0, (now_ms - start) / 86_400_000)

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        user = self._user(request.user_id)
        if request.kind == TOOL:
            ids = self.world.tool_ids
            scores = np.zeros(len(ids)) if user is None else np.log(self.world.user_tool_taste[user] + 1e-6)
            trigger = self._tool_index.get(request.trigger_item or "")
            if trigger is not None:
                scores = scores + np.log(self.world.tool_successors[trigger] + 1e-6)
        else:
            ids = self.world.product_ids
            day = self._day(request.now_ms)
            scores = self._fallback.copy() if user is None else self.world.affinity(user, day)
            if self.world.traffic_span_days is not None:  # nothing before its launch
                scores = np.where(self.world.launched_by(day, self.world.traffic_span_days), scores, -np.inf)
        order = np.argsort(-scores, kind="stable")
        out: list[ScoredItem] = []
        for i in order:
            if ids[i] in request.exclude or scores[i] == -np.inf:
                continue
            out.append(ScoredItem(ids[i], float(scores[i])))
            if len(out) >= request.k:
                break
        return out


def _oracle(context: ModelContext) -> Recommender:
    if context.truth_path is None or not context.truth_path.exists():
        raise ModelUnavailable("the oracle needs the planted truth (--truth FILE written by `streamrec simulate`)")
    return OracleRecommender(SyntheticWorld.load_truth(context.truth_path))


register_model(ModelSpec("oracle", "knows the planted tastes (synthetic data only)", _oracle, needs_truth=True))
