"""Offline evaluation: metrics over replayed notifications, standard protocols, model registry, reports."""
