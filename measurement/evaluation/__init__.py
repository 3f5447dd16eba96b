"""Evaluation: protocols that judge models (replayed notifications, session and holdout protocols, offers).

Importing the package registers the oracle (a reference that knows the synthetic world's planted tastes) beside
the library's models in `model.registry`.
"""

from measurement.evaluation import oracle as _oracle  # noqa: F401  (registers "oracle")
