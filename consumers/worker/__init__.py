"""The recommendation worker: events in, session context in Redis, notifications out, offsets committed last."""
