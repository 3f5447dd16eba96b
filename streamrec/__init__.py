"""streamrec: the shared package every room imports (settings, event and notification schemas, topics, Kafka clients,
the Redis session store, the dev stack); the CLI is the roof package `cli`."""

__version__ = "0.1.0"
