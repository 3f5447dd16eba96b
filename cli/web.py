"""Frontend-facing services: the event collector, the push notifier, and user tokens for the push stream."""

from __future__ import annotations

from urllib.parse import urlencode

import typer

from streamrec.settings import Settings


def collector(
    host: str = typer.Option(None, "--host", help="Listen address (default STREAMREC_COLLECTOR_HOST, 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="Listen port (default STREAMREC_COLLECTOR_PORT, 8080)"),
    seed_demo: bool = typer.Option(
        True, "--seed-demo/--no-seed-demo", help="Make the demo shop's products known to the streaming baseline"
    ),
) -> None:
    """Serve POST /v1/events (202 once Kafka has the events), /metrics, /healthz, the JS snippet and /demo."""
    import uvicorn

    from producers.collector.app import create_app
    from producers.collector.settings import CollectorSettings

    settings, options = Settings(), CollectorSettings()
    if options.demo_enabled and seed_demo:
        from producers.collector.demo_catalogue import seed_demo_catalogue

        try:
            seed_demo_catalogue(settings)
        except Exception as error:  # noqa: BLE001 - the collector itself needs no Redis
            typer.echo(f"demo catalogue not seeded ({error}); the first demo triggers may find no candidates")
    host, port = host or options.host, port if port is not None else options.port
    typer.echo(f"collector on http://{host}:{port}  (demo page: http://{host}:{port}/demo)")
    uvicorn.run(create_app(settings, options), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=5)


def notifier(
    host: str = typer.Option(None, "--host", help="Listen address (default STREAMREC_NOTIFIER_HOST, 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="Listen port (default STREAMREC_NOTIFIER_PORT, 8081)"),
    consume: bool = typer.Option(True, "--consume/--no-consume", help="Run the Kafka loop in this process"),
) -> None:
    """Consume notifications, apply fatigue rules, push over SSE (and the webhook, when configured)."""
    import uvicorn

    from consumers.notifier.app import create_app
    from consumers.notifier.settings import NotifierSettings

    options = NotifierSettings()
    host, port = host or options.host, port if port is not None else options.port
    typer.echo(f"notifier on http://{host}:{port}/v1/users/<user_id>/notifications/stream")
    uvicorn.run(create_app(Settings(), options, consume), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=3)


def push_token(
    user_id: str = typer.Argument(..., help="The user the token lets read the notification stream"),
    ttl: int = typer.Option(None, "--ttl", help="Seconds until it expires (default STREAMREC_NOTIFIER_TOKEN_TTL_S)"),
    demo_url: bool = typer.Option(False, "--demo-url", help="Print the demo page URL for this user instead"),
) -> None:
    """Mint a signed push-stream token for one user (what an app's backend does for its logged-in user)."""
    from consumers.notifier.settings import NotifierSettings
    from consumers.notifier.tokens import mint_user_token
    from producers.collector.settings import CollectorSettings

    options = NotifierSettings()
    token = mint_user_token(options.token_secret.get_secret_value(), user_id, ttl or options.token_ttl_s)
    if not demo_url:
        typer.echo(token)
        return
    collector_options = CollectorSettings()
    query = urlencode({"user": user_id, "token": token})
    typer.echo(f"http://{collector_options.host}:{collector_options.port}/demo?{query}")


def register(app: typer.Typer) -> None:
    app.command("collector")(collector)
    app.command("notifier")(notifier)
    app.command("push-token")(push_token)
