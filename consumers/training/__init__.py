"""Training from the stream: models whose examples are logged by replaying events through the worker."""
