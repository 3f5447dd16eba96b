"""py-spy on the bench's workers: sample each worker process while the events flow, then a table of where the
CPU went (the functions with the most samples on top of the stack, and inclusive shares).

`py-spy record --pid` attaches to a running worker (it needs ptrace rights: root, or kernel.yama.ptrace_scope 0)
and writes collapsed stacks ("frame;frame;... count" lines, py-spy's raw format), which `profile_result` reads.
Idle samples (threads blocked in the poll or a socket) are left out by py-spy: shares are of busy samples.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from measurement.report import BenchmarkResult

_LINE = re.compile(r":\d+\)$")  # "function (file.py:123)" -> grouped without the line


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter, or on PATH; None if neither."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_profiles(pids: list[int], paths: list[Path], rate: int = 100) -> list[subprocess.Popen]:
    executable = py_spy()
    if executable is None:
        raise RuntimeError("py-spy is not installed (`pip install py-spy`, part of the dev extras)")
    return [subprocess.Popen([executable, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                              "--output", str(path), "--nonblocking"],
                             stdout=subprocess.DEVNULL, stderr=path.with_suffix(".log").open("wb"))
            for pid, path in zip(pids, paths, strict=True)]


def stop_profiles(processes: list[subprocess.Popen]) -> None:
    """SIGINT: py-spy writes what it sampled and exits."""
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def function_of(frame: str) -> str:
    return _LINE.sub(")", frame.strip())


def profile_result(raw: Path, top: int = 20) -> BenchmarkResult:
    """The `top` functions by samples on top of the stack (self), with the share of samples they are anywhere in
    (inclusive), from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [function_of(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for function in set(frames):
            anywhere[function] += n
    rows = {function: {"self": 100 * n / total, "inclusive": 100 * anywhere[function] / total, "samples": n}
            for function, n in own.most_common(top)} if total else {}
    return BenchmarkResult(
        title=f"where the worker's CPU went ({raw.stem})", row_label="function", rows=rows,
        units={"self": "% of busy samples", "inclusive": "% of busy samples", "samples": "count"},
        digits={"self": 1, "inclusive": 1}, info={"busy samples": total, "profiler": "py-spy record (idle left out)"},
    )
