"""The demo shop's catalogue: what the demo page shows, and what the streaming baseline may recommend."""

from __future__ import annotations

from pydantic import BaseModel

from streamrec.settings import Settings


class DemoProduct(BaseModel):
    item_id: str
    name: str
    category: str
    brand: str
    price: float
    colour: str  # the card's swatch: the page needs no images


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(item_id="demo-tent", name="Trail tent 2p", category="camping", brand="Fjell", price=189.0,
                colour="#2f6f4f"),
    DemoProduct(item_id="demo-bag", name="Down sleeping bag", category="camping", brand="Fjell", price=149.0,
                colour="#3f5f8f"),
    DemoProduct(item_id="demo-mat", name="Insulated mat", category="camping", brand="Ridge", price=59.0,
                colour="#8f6f3f"),
    DemoProduct(item_id="demo-stove", name="Camp stove", category="camping", brand="Ember", price=45.0,
                colour="#a04030"),
    DemoProduct(item_id="demo-lamp", name="Head lamp", category="camping", brand="Ridge", price=29.0,
                colour="#c0a020"),
    DemoProduct(item_id="demo-boots", name="Hiking boots", category="footwear", brand="Stride", price=129.0,
                colour="#5a3a2a"),
    DemoProduct(item_id="demo-socks", name="Merino socks", category="footwear", brand="Stride", price=19.0,
                colour="#7a7a9a"),
    DemoProduct(item_id="demo-jacket", name="Rain jacket", category="clothing", brand="Fjell", price=169.0,
                colour="#1f7f9f"),
    DemoProduct(item_id="demo-fleece", name="Fleece mid-layer", category="clothing", brand="Ridge", price=79.0,
                colour="#9f3f6f"),
    DemoProduct(item_id="demo-bottle", name="Steel bottle", category="accessories", brand="Ember", price=24.0,
                colour="#4f8f8f"),
    DemoProduct(item_id="demo-poles", name="Trekking poles", category="accessories", brand="Stride", price=69.0,
                colour="#6f6f2f"),
    DemoProduct(item_id="demo-pack", name="Day pack 28 l", category="accessories", brand="Fjell", price=99.0,
                colour="#3f3f5f"),
)


def seed_demo_catalogue(settings: Settings) -> int:
    """Make the demo products known to the streaming baseline, so the first trigger already has candidates."""
    from model.baselines.session_cooccurrence import seed_catalogue

    seed_catalogue(settings, products=[p.item_id for p in DEMO_PRODUCTS])
    return len(DEMO_PRODUCTS)
