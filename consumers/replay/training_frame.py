"""The training frame of a replay built a chunk of events at a time, equal to `events_to_frame` of them all.

A streamed replay never holds its warm-up events as objects; the columnar frame (which every offline `fit`
takes anyway) is what stays. Chunks are flattened by `events_to_frame` itself, so the columns mean the same.
"""

from __future__ import annotations

import pandas as pd

from model.interactions import COLUMNS, events_to_frame
from streamrec.events import Event

FRAME_CHUNK = 20_000


class TrainingFrameBuilder:
    """Collects events into frame chunks; `frame()` is what `events_to_frame` gives for all of them at once."""

    def __init__(self, chunk: int = FRAME_CHUNK) -> None:
        self.chunk = chunk
        self.rows = 0
        self._pending: list[Event] = []
        self._chunks: list[pd.DataFrame] = []
        self._used = False

    def add(self, event: Event) -> None:
        self._pending.append(event)
        self.rows += 1
        if len(self._pending) >= self.chunk:
            self._chunks.append(events_to_frame(self._pending))
            self._pending = []

    def frame(self) -> pd.DataFrame:
        """The frame of every event added, in the order added (call once: the chunks are used up)."""
        if self._used:
            raise RuntimeError("the training frame was already taken")
        self._used = True
        chunks = [*self._chunks, *([events_to_frame(self._pending)] if self._pending else [])]
        self._chunks, self._pending = [], []
        if not chunks:
            return events_to_frame([])
        if len(chunks) == 1:
            return chunks[0]
        # Column by column, each chunk's copy dropped once joined: the whole frame never exists twice.
        joined: dict[str, pd.Series] = {}
        for name in COLUMNS:
            parts = [c[name] for c in chunks]
            column = pd.concat(parts, ignore_index=True)
            if len({str(part.dtype) for part in parts}) > 1:
                # A chunk without (say) prices has an object column of None where the others have floats: infer
                # the column again from its values, as one `events_to_frame` call over all the events would.
                values = column.astype(object)
                column = pd.Series(values.where(values.notna(), None).tolist())
            joined[name] = column
            del parts, column
            for c in chunks:
                del c[name]
        return pd.DataFrame(joined)
