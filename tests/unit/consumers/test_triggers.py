"""Trigger rules decide which events deserve a recommendation."""

from __future__ import annotations

from consumers.worker.triggers import trigger_for
from streamrec.events import PRODUCT, TOOL, AddToCart, PageView, Purchase, SessionStart, TaskCompleted
from streamrec.session_store import SessionContext
from streamrec.settings import Settings


def _ctx(ordinal: int = 0) -> SessionContext:
    return SessionContext(user_id="u", session_id="s", page_view_ordinal=ordinal)


def test_task_completed_asks_for_a_tool():
    trigger = trigger_for(TaskCompleted(user_id="u", session_id="s", tool_id="t1"), _ctx(), Settings())
    assert trigger is not None and trigger.kind == TOOL and trigger.trigger_item == "t1"


def test_cart_and_purchase_ask_for_complementary_products():
    settings = Settings()
    cart = AddToCart(user_id="u", session_id="s", item_id="p")
    for event in (cart, Purchase(user_id="u", session_id="s", item_id="p")):
        trigger = trigger_for(event, _ctx(), settings)
        assert trigger is not None and trigger.kind == PRODUCT and trigger.trigger_item == "p"


def test_every_nth_page_view_triggers_and_others_do_not():
    settings = Settings(trigger_every_nth_page_view=3)
    fired = [n for n in range(1, 10) if trigger_for(PageView(user_id="u", session_id="s"), _ctx(n), settings)]
    assert fired == [3, 6, 9]


def test_rules_can_be_switched_off():
    settings = Settings(trigger_every_nth_page_view=0, trigger_on_task_completed=False, trigger_on_purchase=False)
    assert trigger_for(PageView(user_id="u", session_id="s"), _ctx(5), settings) is None
    assert trigger_for(TaskCompleted(user_id="u", session_id="s", tool_id="t"), _ctx(), settings) is None
    assert trigger_for(Purchase(user_id="u", session_id="s", item_id="p"), _ctx(), settings) is None
    assert trigger_for(SessionStart(user_id="u", session_id="s"), _ctx(), Settings()) is None
