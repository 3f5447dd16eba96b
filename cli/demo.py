"""`streamrec demo`: the whole pipeline on one machine, end to end, in about 30 seconds.

Starts the local stack (broker + Redis, or uses what answers), a worker process, streams simulated traffic
with planted tastes, and prints notifications as they arrive with their latency from the triggering event.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import typer

from streamrec.settings import Settings


def run_demo(settings: Settings, duration_s: float = 30.0, rate: float = 100.0, seed: int = 7) -> None:
    from consumers.notifier.printer import print_notifications
    from model.baselines.session_cooccurrence import seed_catalogue
    from producers.live_simulation import stream_simulation
    from producers.simulator import world_for_events
    from streamrec.dev_stack import DevStack

    typer.echo("1/5 local stack")
    for service in DevStack(settings).up():
        typer.echo(f"    {service.describe()}")

    typer.echo("2/5 catalogue: simulated shop and tool suite (planted tastes)")
    world, _ = world_for_events(int(duration_s * rate), seed)
    seed_catalogue(settings, products=world.product_ids, tools=world.tool_ids)
    typer.echo(f"    {len(world.product_ids)} products in {world.config.categories} categories, "
               f"{len(world.tool_ids)} tools, {len(world.user_ids)} users")

    _train_hybrid(settings, world, seed)

    settings.dev_dir.mkdir(parents=True, exist_ok=True)
    ready_file = settings.dev_dir / "worker.ready"
    ready_file.unlink(missing_ok=True)
    typer.echo(f"4/5 services (logs under {settings.dev_dir}/)")
    services = [_spawn(["worker", "--ready-file", str(ready_file)], settings, "worker")]
    demo_url = _start_web_services(settings, services)
    try:
        deadline = time.monotonic() + 60
        while not ready_file.exists():
            if services[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start; see {settings.dev_dir / 'worker.log'}")
            time.sleep(0.1)
        typer.echo("    worker ready (owns partitions of the events topic)")
        if demo_url:
            typer.echo(f"    demo shop page (click around, pushed recommendations appear as toasts):\n    {demo_url}")
        typer.echo(f"5/5 streaming {duration_s:.0f}s of traffic at {rate:.0f} events/s; notifications as they arrive:")
        typer.echo(f"    {'user':<14} {'trigger':<15} {'latency':>10}  model: items(score)")
        printer = threading.Thread(target=print_notifications, args=(settings, None, duration_s + 8), daemon=True)
        printer.start()
        time.sleep(3)  # the printer's group join
        run = stream_simulation(settings, duration_s=duration_s, rate=rate, seed=seed, progress=False)
        typer.echo(f"    sent {run.sent} events in {run.seconds:.1f}s ({run.resent} re-sent after broker errors, "
                   f"{run.lost} lost)")
        printer.join()
        if demo_url and sys.stdin.isatty():
            typer.echo(f"The demo page stays live: {demo_url}")
            input("Press Enter to stop the worker, collector and notifier... ")
    finally:
        for process in services:
            process.terminate()
        for process in services:
            process.wait(30)
    typer.echo("done. The broker and Redis keep running: `streamrec dev status`, `streamrec dev down`.")


def _train_hybrid(settings: Settings, world, seed: int, events: int = 8000) -> None:
    """The served model: the hybrid trained on past traffic of the same shop (other visits, another seed), through
    the worker's pipeline, published where the worker loads it. Without the neural source, to stay well under a
    minute on two cores; `streamrec train --model hybrid` trains the full one."""
    import itertools

    from consumers.training.hybrid_training import publish_hybrid
    from model.interactions import events_to_frame
    from producers.simulator import TrafficConfig, generate_events

    started = time.monotonic()
    typer.echo(f"3/5 model: the hybrid (every candidate source + listwise ranker) on {events:,} past simulated events")
    past = list(itertools.islice(generate_events(world, TrafficConfig(seed=seed + 1000)), events))
    path, trained = publish_hybrid(events_to_frame(past), settings.model_dir, settings, neural=False, progress=False)
    typer.echo(f"    {trained.examples.logged:,} triggers logged through the pipeline, "
               f"{trained.examples.next_in_candidates:,} training lists; trained in "
               f"{time.monotonic() - started:.0f}s, published to {path}")


def _spawn(args: list[str], settings: Settings, name: str) -> subprocess.Popen:
    from streamrec.dev_stack import spawn_with_settings

    return spawn_with_settings(["-m", "cli", *args], settings, settings.dev_dir / f"{name}.log")


def _start_web_services(settings: Settings, services: list[subprocess.Popen]) -> str | None:
    """Collector + notifier for the demo page; returns its URL, or None when their ports are taken."""
    from urllib.parse import urlencode

    from consumers.notifier.settings import NotifierSettings
    from consumers.notifier.tokens import mint_user_token
    from producers.collector.settings import CollectorSettings
    from streamrec.dev_stack import port_open, wait_for_port

    collector, notifier = CollectorSettings(), NotifierSettings()
    taken = [p for p in (collector.port, notifier.port) if port_open("127.0.0.1", p)]
    if taken:
        typer.echo(f"    ports {taken} are in use: the demo page is skipped (set STREAMREC_COLLECTOR_PORT/"
                   "STREAMREC_NOTIFIER_PORT)")
        return None
    services.append(_spawn(["collector"], settings, "collector"))
    services.append(_spawn(["notifier"], settings, "notifier"))
    wait_for_port(collector.host, collector.port, 30, services[-2])
    wait_for_port(notifier.host, notifier.port, 30, services[-1])
    token = mint_user_token(notifier.token_secret.get_secret_value(), "demo-user", notifier.token_ttl_s)
    return f"http://{collector.host}:{collector.port}/demo?{urlencode({'user': 'demo-user', 'token': token})}"
