"""Write a results table as markdown + CSV and a bar chart as PNG under `reports/`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def write_table(table: pd.DataFrame, out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    table.to_csv(csv)
    md.write_text(table.to_markdown() + "\n" if _has_tabulate() else _markdown(table))
    return md, csv


def write_bar_plot(table: pd.DataFrame, columns: Sequence[str], out_dir: Path, stem: str, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    ax = table[list(columns)].T.plot.bar(figsize=(9, 4.5), rot=0)
    ax.set_title(title)
    ax.set_ylabel("value")
    ax.legend(loc="best", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    path = out_dir / f"{stem}.png"
    plt.tight_layout()
    plt.savefig(path, dpi=120)
    plt.close()
    return path


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def _markdown(table: pd.DataFrame) -> str:
    """A pipe table without the optional `tabulate` dependency."""
    frame = table.reset_index()
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
