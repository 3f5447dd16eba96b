"""The oracle: a recommender that knows the synthetic world's planted tastes (an upper reference, not a model)."""

from __future__ import annotations

import numpy as np

from model.recommender import RecommendationRequest, Recommender, ScoredItem
from model.registry import ModelContext, ModelSpec, ModelUnavailable, register_model
from producers.simulator import TrafficConfig
from producers.synthetic_world import SyntheticWorld
from streamrec.events import TOOL


class OracleRecommender(Recommender):
    """Products by planted affinity; tools by the planted workflow from the trigger tool times the user's taste."""

    name = "oracle"
    version = "truth"

    def __init__(self, world: SyntheticWorld, knows_taste: bool = True) -> None:
        self.world = world
        # Without the users' tastes (products: their category taste and latent match; tools: their tool taste) the
        # oracle knows what the stream of other users can teach: popularity (as planted) and the workflow graph.
        self.knows_taste = knows_taste
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

    def _next_tool(self, user: int | None, trigger: int | None) -> np.ndarray:
        """Log-probability of each next tool as the simulator draws it: the workflow's successor of the tool just
        finished with probability `follow_workflow`, else the user's own taste (a mixture, not a product)."""
        n = len(self.world.tool_ids)
        taste = np.full(n, 1.0 / n) if user is None or not self.knows_taste else self.world.user_tool_taste[user]
        if trigger is None:
            return np.log(taste + 1e-12)
        follow = self.world.follow_workflow
        if follow is None:  # a truth saved before it kept the traffic's: the simulator's default then
            follow = TrafficConfig.model_fields["follow_workflow"].default
        return np.log(follow * self.world.tool_successors[trigger] + (1 - follow) * taste + 1e-12)

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        user = self._user(request.user_id)
        if request.kind == TOOL:
            ids = self.world.tool_ids
            scores = self._next_tool(user, self._tool_index.get(request.trigger_item or ""))
        else:
            ids = self.world.product_ids
            day = self._day(request.now_ms)
            scores = self._fallback.copy() if user is None or not self.knows_taste else self.world.affinity(user, day)
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


def _truth(context: ModelContext) -> SyntheticWorld:
    if context.truth_path is None or not context.truth_path.exists():
        raise ModelUnavailable("the oracle needs the planted truth (--truth FILE written by `streamrec simulate`)")
    return SyntheticWorld.load_truth(context.truth_path)


def _oracle(context: ModelContext) -> Recommender:
    return OracleRecommender(_truth(context))


def _oracle_without_taste(context: ModelContext) -> Recommender:
    oracle = OracleRecommender(_truth(context), knows_taste=False)
    oracle.name = "oracle-workflow"
    return oracle


register_model(ModelSpec("oracle", "knows the planted tastes (synthetic data only)", _oracle, needs_truth=True))
register_model(ModelSpec("oracle-workflow", "knows the planted workflow graph and popularity, not each user's taste "
                         "(the most a model learning from other users can know; synthetic data only)",
                         _oracle_without_taste, needs_truth=True))
