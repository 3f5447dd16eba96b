"""The notifier: consumes `notifications`, applies fatigue rules, pushes over SSE and to a webhook."""
