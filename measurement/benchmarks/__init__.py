"""Benchmarks: throughput and latency of the live path (worker, relay, group, notifier, serving) beside the floor."""
