"""Things that write events into Kafka: the SDK, the simulator, file replay, the HTTP collector."""
