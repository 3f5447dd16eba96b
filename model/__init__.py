"""The offline library: the Recommender interface and registry, model families, FAISS, datasets, metrics, saving."""
