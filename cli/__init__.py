"""The `streamrec` command line: one entry point, one module of subcommands per area.

Each module below defines `register(app)`; heavy imports (TensorFlow, FAISS) happen inside commands so
`streamrec --help` stays instant.
"""

from __future__ import annotations

import logging

import typer

from cli import bench, dev, evaluation, models, pipeline, web
from streamrec.log_throttle import throttle_library_logs

app = typer.Typer(
    name="streamrec",
    help="Streaming recommender: Kafka events -> Redis session context -> retrieval + ranking -> notifications.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (dev, pipeline, models, evaluation, bench, web):
    module.register(app)


@app.callback()
def _configure(
    log_level: str | None = typer.Option(
        None, help="DEBUG, INFO, WARNING or ERROR (default: STREAMREC_LOG_LEVEL, else INFO)", show_default=False
    ),
) -> None:
    """Logging for every subcommand; the level is the option's, else the settings' (`STREAMREC_LOG_LEVEL`)."""
    from streamrec.settings import Settings

    level = log_level if log_level is not None else Settings().log_level
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    throttle_library_logs()  # a broker outage is one line per kind of error per 10 s, not dozens a second


def main() -> None:
    app()
