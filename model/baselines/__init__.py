"""Baseline recommenders: strong, simple references every model must beat."""
