"""The demo shop in headless Chromium: clicks become events, the worker recommends, the notifier pushes a toast."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

from consumers.notifier.app import create_app as create_notifier
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.tokens import mint_user_token
from producers.collector.app import create_app as create_collector
from producers.collector.demo_catalogue import DEMO_PRODUCTS, DemoProduct, seed_demo_catalogue
from producers.collector.kafka_sink import BrokerUnavailable
from producers.collector.settings import CollectorSettings
from streamrec.dev_stack import free_port
from streamrec.settings import Settings
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import start_worker
from tests.web_helpers import serve

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def browser(tmp_path: Path):
    """A Chromium context on a fresh profile directory (what `--user-data-dir` gives a plain launch)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed: run scripts/install-browser.sh (make test does)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "chromium-profile"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def test_a_click_session_on_the_demo_page_gets_a_pushed_recommendation(settings, browser, artifacts_dir):
    ensure_topics(settings)
    seed_demo_catalogue(settings)
    collector_port, notifier_port = free_port(), free_port()
    collector_url, notifier_url = f"http://127.0.0.1:{collector_port}", f"http://127.0.0.1:{notifier_port}"
    collector = CollectorSettings(notifier_public_url=notifier_url, produce_timeout_s=10)
    notifier = NotifierSettings(
        consumer_group=f"notifier-{uuid.uuid4().hex[:8]}", cors_origins=[collector_url], heartbeat_s=1.0,
        token_secret="browser-test-secret",
    )
    user = f"shopper-{uuid.uuid4().hex[:6]}"
    token = mint_user_token("browser-test-secret", user, ttl_s=600)
    names = {p.item_id: p.name for p in DEMO_PRODUCTS}

    worker = start_worker(settings)
    try:
        with serve(create_notifier(settings, notifier), notifier_port), \
                serve(create_collector(settings, collector), collector_port):
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.goto(f"{collector_url}/demo?{urlencode({'user': user, 'token': token})}")
            page.wait_for_selector("#push-state.state-connected", timeout=20_000)

            cards = page.locator(".card")
            cards.nth(0).locator("button.view").click()
            cards.nth(5).locator("button.view").click()
            cards.nth(5).locator("button.add").click()  # add_to_cart: a recommendation moment

            toast = page.locator(".streamrec-toast").first
            toast.wait_for(timeout=60_000)
            page.wait_for_timeout(400)  # let the toast's entrance animation finish before the screenshot
            page.screenshot(path=str(artifacts_dir / "browser_demo_toast.png"))
            text = toast.inner_text()
            sent = int(page.locator("#sent-count").inner_text())
            log_lines = page.locator("#log li").all_inner_texts()
    finally:
        worker.shutdown()

    assert "Recommended for you" in text
    assert f"added {DEMO_PRODUCTS[5].name} to cart" in text, text  # the push answers this session's click
    shown = [name for name in names.values() if name in text]
    assert shown, f"toast names no catalogue product: {text!r}"
    # session_start, the landing page view, two product views and the add to cart all reached the collector.
    assert sent >= 5, (sent, log_lines, console)
    assert any("sent add_to_cart demo-boots" in line for line in log_lines), log_lines


class FlakySink:
    """Refuses the first `failures` deliveries as a broker outage would, then keeps what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.events: list = []

    def deliver(self, events) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise BrokerUnavailable("broker down (test)")
        self.events.extend(events)

    def close(self) -> None:
        pass


class RequestLog:
    """ASGI middleware that records the query and headers of each request of one method."""

    def __init__(self, app, method: str = "POST") -> None:
        self.app = app
        self.method = method
        self.requests: list[tuple[str, dict[bytes, bytes]]] = []

    @property
    def posts(self) -> list[tuple[str, str]]:
        return [(query, headers.get(b"content-type", b"").decode()) for query, headers in self.requests]

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == self.method:
            self.requests.append((scope["query_string"].decode(), dict(scope["headers"])))
        await self.app(scope, receive, send)


def test_the_snippet_retries_through_503s_and_hands_leftovers_to_send_beacon_on_page_hide(browser):
    sink = FlakySink(failures=2)
    app = RequestLog(create_collector(Settings(), CollectorSettings(retry_after_s=1), sink))
    with serve(app) as base:
        page = browser.new_page()
        page.goto(f"{base}/demo?user=beacon-user")
        # session_start + page_view: refused twice with 503, then accepted on the third try.
        page.wait_for_function("Number(document.querySelector('#sent-count').textContent) >= 2", timeout=30_000)
        retries = [line for line in page.locator("#log li").all_inner_texts() if "retrying" in line]
        assert [e.type for e in sink.events] == ["session_start", "page_view"]

        # Two events still queued when the user leaves: the page-hide handler beacons them.
        queued = page.evaluate(
            "[StreamRec.track('page_view', {item_id: 'demo-tent'}),"
            " StreamRec.track('add_to_cart', {item_id: 'demo-tent'})]"
        )
        page.goto("about:blank")
        for _ in range(100):
            if {e.event_id for e in sink.events} >= set(queued):
                break
            page.wait_for_timeout(100)
    assert len(retries) == 2, retries
    assert [(query, kind) for query, kind in app.posts[:3]] == [("", "application/json")] * 3
    assert {e.event_id for e in sink.events} >= set(queued), "the beaconed events did not arrive"
    beacon_query, beacon_type = app.posts[-1]
    assert beacon_query == "api_key=demo-key" and beacon_type.startswith("text/plain")


def test_the_browser_reconnects_after_a_notifier_restart_and_gets_what_was_queued_meanwhile(settings, browser):
    """EventSource's own reconnect sends Last-Event-ID (cross-origin): the push made while it was away arrives."""
    import redis

    from consumers.notifier.dispatcher import NotificationDispatcher
    from consumers.notifier.fatigue import FatigueRules
    from consumers.notifier.metrics import NotifierMetrics
    from consumers.notifier.push_queue import PushQueue
    from streamrec.events import utc_now
    from streamrec.notifications import Notification, RecommendedItem, notification_id_for

    collector_port, notifier_port = free_port(), free_port()
    collector_url, notifier_url = f"http://127.0.0.1:{collector_port}", f"http://127.0.0.1:{notifier_port}"
    options = NotifierSettings(token_secret="reconnect-secret", cors_origins=[collector_url], heartbeat_s=1.0,
                               min_interval_s=0)
    user = f"returning-{uuid.uuid4().hex[:6]}"
    dispatcher = NotificationDispatcher(
        PushQueue(redis.Redis.from_url(settings.redis_url), settings.key_prefix, options),
        FatigueRules.from_settings(options), NotifierMetrics(),
    )

    def push(item: DemoProduct) -> None:
        trigger = uuid.uuid4().hex
        dispatcher.dispatch_batch([Notification(
            notification_id=notification_id_for(trigger), user_id=user, session_id="s",
            items=[RecommendedItem(item_id=item.item_id, score=1.0)], model_name="m", model_version="1",
            reason="test push", trigger_event_id=trigger, trigger_event_type="purchase", trigger_ts=utc_now(),
        )])

    streams = RequestLog(create_notifier(settings, options, consume=False), method="GET")
    collector = create_collector(settings, CollectorSettings(notifier_public_url=notifier_url), FlakySink(0))
    token = mint_user_token("reconnect-secret", user, ttl_s=600)
    with serve(collector, collector_port):
        page = browser.new_page()
        with serve(streams, notifier_port):
            page.goto(f"{collector_url}/demo?{urlencode({'user': user, 'token': token})}")
            page.wait_for_selector("#push-state.state-connected", timeout=20_000)
            push(DEMO_PRODUCTS[0])
            page.locator(".streamrec-toast", has_text=DEMO_PRODUCTS[0].name).wait_for(timeout=20_000)
        page.wait_for_selector("#push-state.state-reconnecting", timeout=20_000)
        push(DEMO_PRODUCTS[1])  # queued while the page has no stream
        with serve(streams, notifier_port):
            page.locator(".streamrec-toast", has_text=DEMO_PRODUCTS[1].name).wait_for(timeout=30_000)
        pushes = [line for line in page.locator("#log li").all_inner_texts() if "push:" in line]
    resumed = [headers for _, headers in streams.requests if b"last-event-id" in headers]
    assert resumed, "the reconnect did not send Last-Event-ID"
    assert len(pushes) == 2, pushes  # the first push was not shown again after the reconnect
