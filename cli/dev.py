"""`streamrec dev up|down|status`: the local broker and Redis."""

from __future__ import annotations

import typer

from streamrec.settings import Settings

dev_app = typer.Typer(help="Local stack: Apache Kafka (Tansu without Java) and Redis, with pid files and logs.")


@dev_app.command("up")
def up() -> None:
    """Start what is missing (broker on STREAMREC_KAFKA_BOOTSTRAP, Redis on STREAMREC_REDIS_URL); create topics."""
    from streamrec.dev_stack import DevStack

    stack = DevStack(Settings())
    for service in stack.up():
        typer.echo(service.describe())
    for note in stack.notes:  # e.g. why the broker is Tansu rather than Apache Kafka
        typer.echo(note)


@dev_app.command("down")
def down() -> None:
    """Stop the services this stack started (external ones are left alone)."""
    from streamrec.dev_stack import DevStack

    stopped = DevStack(Settings()).down()
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing"))


@dev_app.command("status")
def status() -> None:
    """Show whether the broker and Redis answer, and who started them."""
    from streamrec.dev_stack import DevStack

    settings = Settings()
    services = DevStack(settings).status()
    for service in services:
        typer.echo(service.describe())
    if not all(s.answering for s in services):
        raise typer.Exit(1)
    from consumers.notifier.settings import NotifierSettings
    from streamrec.kafka_clients import consumer_lag

    for group, topic in ((settings.consumer_group, settings.events_topic),
                         (NotifierSettings().consumer_group, settings.notifications_topic)):
        try:
            lag = consumer_lag(settings, group, topic)
        except Exception as error:  # noqa: BLE001 - status must say what it could not read, not crash
            typer.echo(f"lag     {group} on {topic}: unknown ({error!r})")
            continue
        per_partition = " ".join(f"{p}:{n}" for p, n in lag.items())
        typer.echo(f"lag     {group} on {topic}: {sum(lag.values())} records ({per_partition or 'no partitions'})")


def register(app: typer.Typer) -> None:
    app.add_typer(dev_app, name="dev")
