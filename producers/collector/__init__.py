"""The HTTP collector: frontends POST events here; they reach Kafka before the collector answers 202."""
