"""One knob for the threads a worker's maths may use: BLAS and OpenMP pools now, TensorFlow's before it starts.

TensorFlow reads TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS when its runtime starts (the first op), so they
are set before any model is loaded; threadpoolctl caps the BLAS and OpenMP libraries already loaded (NumPy's
OpenBLAS, FAISS's and implicit's OpenMP). FAISS is also held to one thread where it serves
(`model.index.faiss_index.serve_single_threaded`).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def limit_compute_threads(threads: int) -> None:
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    if "tensorflow" in sys.modules:  # already imported: set it through the API while the runtime allows it
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError as error:  # the runtime has started: its pools are fixed for this process
            log.warning("TensorFlow already started, its thread pools stay as they are: %s", error)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)  # persists for the process (used without `with`)
