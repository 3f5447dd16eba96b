"""The worker's thread knob caps the BLAS pool already loaded, in a fresh process each (TensorFlow reads the
environment variables it sets when its runtime starts)."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, os
from streamrec.compute_threads import limit_compute_threads
import numpy
limit_compute_threads({threads})
from threadpoolctl import threadpool_info
print(json.dumps({{"blas": [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"],
                  "env": os.environ["TF_NUM_INTRAOP_THREADS"]}}))
"""


def test_the_limit_caps_blas_in_a_running_process():
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", CHECK.format(threads=threads)], capture_output=True, text=True,
                             timeout=120, check=True).stdout.strip().splitlines()[-1]
        seen = json.loads(out)
        assert seen["blas"] and set(seen["blas"]) == {threads}
        assert seen["env"] == str(threads)
