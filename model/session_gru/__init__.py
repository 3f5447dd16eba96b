"""Session GRU: a NARM-style session encoder trained with a full softmax over the catalogue."""
