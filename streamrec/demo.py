"""`streamrec demo`: the whole pipeline on one machine, end to end, in about 30 seconds.

Starts the local stack (broker + Redis, or uses what answers), a worker process, streams simulated traffic
with planted tastes, and prints notifications as they arrive with their latency from the triggering event.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import redis
import typer

from streamrec.settings import Settings


def run_demo(settings: Settings, duration_s: float = 30.0, rate: float = 100.0, seed: int = 7) -> None:
    from consumers.notification_printer import print_notifications
    from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
    from producers.live_simulation import stream_simulation
    from producers.simulator import world_for_events
    from streamrec.dev_stack import DevStack
    from streamrec.session_store import PRODUCT, TOOL

    typer.echo("1/4 local stack")
    for service in DevStack(settings).up():
        typer.echo(f"    {service.describe()}")

    typer.echo("2/4 catalogue: simulated shop and tool suite (planted tastes)")
    world, _ = world_for_events(int(duration_s * rate), seed)
    catalogue = SessionCooccurrenceRecommender(redis.Redis.from_url(settings.redis_url), settings.key_prefix)
    catalogue.seed_catalogue(PRODUCT, world.product_ids)
    catalogue.seed_catalogue(TOOL, world.tool_ids)
    typer.echo(f"    {len(world.product_ids)} products in {world.config.categories} categories, "
               f"{len(world.tool_ids)} tools, {len(world.user_ids)} users")

    settings.dev_dir.mkdir(parents=True, exist_ok=True)
    worker_log = settings.dev_dir / "worker.log"
    typer.echo(f"3/4 worker (log: {worker_log})")
    ready_file = settings.dev_dir / "worker.ready"
    ready_file.unlink(missing_ok=True)
    with worker_log.open("ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "streamrec", "worker", "--ready-file", str(ready_file)],
                                  env={**os.environ, **settings.to_env()}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready_file.exists():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start; see {worker_log}")
            time.sleep(0.1)
        typer.echo(f"4/4 streaming {duration_s:.0f}s of traffic at {rate:.0f} events/s; notifications as they arrive:")
        typer.echo(f"    {'user':<14} {'trigger':<15} {'latency':>10}  model: items(score)")
        printer = threading.Thread(target=print_notifications, args=(settings, None, duration_s + 8), daemon=True)
        printer.start()
        time.sleep(3)  # the printer's and the worker's group joins
        run = stream_simulation(settings, duration_s=duration_s, rate=rate, seed=seed, progress=False)
        typer.echo(f"    sent {run.sent} events in {run.seconds:.1f}s")
        printer.join()
    finally:
        worker.terminate()
        worker.wait(30)
    typer.echo("done. The broker and Redis keep running: `streamrec dev status`, `streamrec dev down`.")
