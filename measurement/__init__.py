"""Measurement: evaluation protocols that judge models and benchmarks that time the pipeline, beside the library."""
