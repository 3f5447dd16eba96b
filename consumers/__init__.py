"""Things that read Kafka: the recommendation worker, the notifier, and replay (the worker's pipeline, past events)."""
