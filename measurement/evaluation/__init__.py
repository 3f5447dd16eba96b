"""Evaluation: protocols that judge models (replayed notifications, session and holdout protocols, offers).

Importing the package registers the hybrid (trained through the worker's pipeline) and the oracle (a reference
that knows the synthetic world's planted tastes) beside the library's models in `model.registry`.
"""

from consumers.training import hybrid_spec as _hybrid_spec  # noqa: F401  (registers "hybrid", "hybrid-rrf")
from measurement.evaluation import oracle as _oracle  # noqa: F401  (registers "oracle")
