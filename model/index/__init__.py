"""FAISS indexes over item embeddings."""
