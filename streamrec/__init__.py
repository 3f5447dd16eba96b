"""streamrec: a streaming, event-driven recommender (shared package: settings, schemas, session store, CLI)."""

__version__ = "0.1.0"
