"""Two-tower retrieval: feature spec and vocabularies, Keras towers, in-batch softmax task, training."""
