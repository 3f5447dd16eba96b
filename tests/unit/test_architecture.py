"""The import direction of docs/architecture.md holds: its grep checks print nothing on this tree.

The same checks are run on a planted violation (a shared module importing the CLI, a model module importing the
worker) to prove they can fail.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"


def _checks() -> list[str]:
    text = DOC.read_text()
    section = text.split("## Checks", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "docs/architecture.md has no ```sh block under ## Checks"
    return [line for line in block.group(1).splitlines() if line.startswith("grep ")]


def _run(check: str, cwd: Path) -> str:
    done = subprocess.run(["bash", "-c", check], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode in (0, 1), f"{check!r} failed to run: {done.stderr}"
    return done.stdout


def test_the_doc_checks_every_room_below_the_roof() -> None:
    checked = {check.split("--include=*.py ")[1].strip() for check in _checks()}
    assert checked == {"streamrec/", "model/", "producers/", "consumers/", "measurement/"}


@pytest.mark.parametrize("check", _checks())
def test_no_lower_room_imports_a_higher_one(check: str) -> None:
    assert _run(check, ROOT) == "", f"imports against the direction of docs/architecture.md:\n{_run(check, ROOT)}"


def test_the_checks_catch_a_planted_violation(tmp_path: Path) -> None:
    planted = {
        "streamrec/settings.py": "from cli import main\n",
        "model/serving.py": "def f():\n    from consumers.worker.worker import RecommendationWorker\n",
        "producers/sdk.py": "import consumers.worker\n",
        "consumers/loop.py": "from measurement.report import write_report\n",
        "measurement/report.py": "from cli.bench import bench_app\n",
    }
    for path, source in planted.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(source)
    (tmp_path / "model" / "fine.py").write_text("from streamrec.events import Event\nimport modelling\n")
    found = "".join(_run(check, tmp_path) for check in _checks())
    for path in planted:
        assert path in found, f"the checks missed the planted import in {path}"
    assert "fine.py" not in found
