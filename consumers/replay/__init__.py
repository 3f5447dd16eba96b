"""Replay: drive the worker's own pipeline over past events, in event-time order, in an isolated namespace."""
