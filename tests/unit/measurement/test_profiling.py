"""py-spy's collapsed stacks read as a table of where the CPU went; a real py-spy run on a busy child process."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from measurement.benchmarks.profiling import profile_result, py_spy, start_profiles, stop_profiles


def test_self_and_inclusive_shares_come_from_the_collapsed_stacks(tmp_path):
    raw = tmp_path / "profile.txt"
    raw.write_text("\n".join([
        "run (worker.py:10);handle_batch (worker.py:50);decode (events.py:7) 30",
        "run (worker.py:10);handle_batch (worker.py:52);recommend (hybrid.py:3) 60",
        "run (worker.py:11);poll (consumer.py:9) 10",
        "garbage line without a count",
    ]))
    result = profile_result(raw, top=2)
    assert list(result.rows) == ["recommend (hybrid.py)", "decode (events.py)"]  # top 2 by self samples
    assert result.rows["recommend (hybrid.py)"]["self"] == 60.0
    assert result.rows["decode (events.py)"]["inclusive"] == 30.0
    assert result.info["busy samples"] == 100


@pytest.mark.skipif(py_spy() is None, reason="py-spy is not installed")
def test_py_spy_samples_a_running_process_and_names_its_busy_function(tmp_path):
    busy = "def spin_here():\n    while True:\n        sum(range(1000))\nspin_here()\n"
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        time.sleep(0.5)
        (sampler,) = start_profiles([child.pid], [tmp_path / "child.txt"], rate=200)
        time.sleep(2)
        stop_profiles([sampler])
    finally:
        child.kill()
    if not (tmp_path / "child.txt").exists():
        pytest.skip("py-spy could not attach here (ptrace not permitted): "
                    + (tmp_path / "child.log").read_text(errors="replace")[-300:])
    result = profile_result(tmp_path / "child.txt")
    assert result.info["busy samples"] > 50
    top = next(iter(result.rows))
    assert top.startswith("spin_here") and result.rows[top]["inclusive"] > 90, result.rows
