"""The `--data` forms a training or benchmark command takes: `sim:N[:SEED]`, the ASOS folder, an event-log file.

Each becomes an interactions frame (see `model.interactions`) and, where the source knows it, the catalogue of
every product with its attributes (so items without training events still get attribute vectors).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from model.datasets.asos_frame import asos_train_valid
from model.datasets.event_log import read_event_log
from model.interactions import events_to_frame
from producers.simulator import simulate

DATA_HELP = (
    "Training data: 'sim:N[:SEED]' (simulated shop with N events), the ASOS folder "
    "(../shared/data/asos-dsf2020, its train split), or an event log file (.parquet / .csv)."
)


class UnknownDataSource(ValueError):
    """The `--data` value is neither `sim:N[:SEED]`, a folder nor a file."""


def load_training_data(data: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(interactions frame, catalogue frame or None) for one `--data` value."""
    if data.startswith("sim:"):
        parts = data.split(":")
        try:
            n_events, seed = int(parts[1]), int(parts[2]) if len(parts) > 2 else 7
        except (IndexError, ValueError) as error:
            raise UnknownDataSource(f"{data!r}: expected sim:N or sim:N:SEED with integers") from error
        world, events = simulate(n_events, seed=seed)
        return events_to_frame(events), world.catalogue_frame()
    path = Path(data)
    if path.is_dir():
        return asos_train_valid(path)[0], None
    if path.is_file():
        return events_to_frame(read_event_log(path)), None
    raise UnknownDataSource(f"{data!r} is neither sim:N, a folder nor a file")
