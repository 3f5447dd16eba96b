"""Things that read Kafka: the recommendation worker, the notifier, the evaluator."""
