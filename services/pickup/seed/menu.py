"""The sample menu: 26 items in six categories, with plenty, low and no stock among them."""

from __future__ import annotations

from typing import Any

# (id, name, description, price in pence, allergens, on_hand, low-stock threshold)
_CATEGORIES: dict[str, list[tuple[str, str, str, int, list[str], int, int]]] = {
    "Coffee": [
        (
            "espresso",
            "Espresso",
            "A double shot of our house blend, chocolate and cherry notes.",
            240,
            [],
            200,
            20,
        ),
        (
            "flat-white",
            "Flat White",
            "Double espresso with velvety steamed whole milk.",
            340,
            ["milk"],
            150,
            20,
        ),
        (
            "cappuccino",
            "Cappuccino",
            "Espresso, steamed milk and a deep layer of foam.",
            330,
            ["milk"],
            150,
            20,
        ),
        (
            "oat-latte",
            "Oat Latte",
            "Espresso with creamy steamed oat milk.",
            360,
            ["gluten"],
            120,
            20,
        ),
        (
            "mocha",
            "Mocha",
            "Espresso, dark chocolate and steamed milk.",
            380,
            ["milk", "soya"],
            3,
            10,
        ),
    ],
    "Tea & Cold Drinks": [
        (
            "english-breakfast",
            "English Breakfast Tea",
            "A strong Assam blend, served with milk on the side.",
            260,
            [],
            100,
            10,
        ),
        (
            "matcha-latte",
            "Matcha Latte",
            "Ceremonial-grade matcha whisked with steamed milk.",
            390,
            ["milk"],
            40,
            8,
        ),
        (
            "iced-lemonade",
            "Sparkling Lemonade",
            "Pressed lemons, a little cane sugar, sparkling water.",
            320,
            [],
            60,
            10,
        ),
        ("cold-brew", "Cold Brew", "Steeped for 18 hours, served over ice.", 350, [], 0, 6),
    ],
    "Pastries": [
        (
            "butter-croissant",
            "Butter Croissant",
            "Laminated with French butter, baked every morning.",
            280,
            ["gluten", "milk", "eggs"],
            60,
            10,
        ),
        (
            "pain-au-chocolat",
            "Pain au Chocolat",
            "Two batons of dark chocolate in croissant dough.",
            310,
            ["gluten", "milk", "eggs", "soya"],
            45,
            10,
        ),
        (
            "almond-croissant",
            "Almond Croissant",
            "Twice-baked with frangipane and toasted almonds.",
            360,
            ["gluten", "milk", "eggs", "nuts"],
            4,
            8,
        ),
        (
            "cinnamon-bun",
            "Cinnamon Bun",
            "Cardamom dough rolled with cinnamon sugar.",
            330,
            ["gluten", "milk", "eggs"],
            30,
            8,
        ),
        (
            "cheese-scone",
            "Cheese Scone",
            "Mature cheddar and chive, served with butter.",
            290,
            ["gluten", "milk", "eggs"],
            0,
            5,
        ),
    ],
    "Breads": [
        (
            "sourdough-loaf",
            "Sourdough Loaf",
            "Naturally leavened, 36-hour ferment, 800 g.",
            520,
            ["gluten"],
            25,
            5,
        ),
        (
            "seeded-rye",
            "Seeded Rye",
            "Dense rye with sunflower, pumpkin and linseed.",
            560,
            ["gluten", "sesame"],
            2,
            4,
        ),
        (
            "baguette",
            "Baguette",
            "Crisp crust, open crumb, baked three times a day.",
            260,
            ["gluten"],
            40,
            8,
        ),
        (
            "focaccia",
            "Rosemary Focaccia",
            "Olive oil, flaky salt and fresh rosemary.",
            450,
            ["gluten"],
            18,
            5,
        ),
    ],
    "Sandwiches & Lunch": [
        (
            "ham-cheese-toastie",
            "Ham & Cheese Toastie",
            "Outdoor-bred ham, cheddar and mustard on sourdough.",
            650,
            ["gluten", "milk", "mustard"],
            20,
            5,
        ),
        (
            "halloumi-wrap",
            "Halloumi Wrap",
            "Grilled halloumi, roast peppers, hummus and leaves.",
            690,
            ["gluten", "milk", "sesame"],
            15,
            5,
        ),
        (
            "tomato-soup",
            "Roast Tomato Soup",
            "With basil oil and a slice of sourdough.",
            580,
            ["gluten", "celery"],
            3,
            5,
        ),
        (
            "grain-bowl",
            "Grain Bowl",
            "Spelt, roast squash, feta, pickled onion, tahini.",
            790,
            ["gluten", "milk", "sesame"],
            12,
            4,
        ),
        (
            "egg-mayo-roll",
            "Egg Mayo Roll",
            "Free-range egg, chive mayonnaise, soft white roll.",
            450,
            ["gluten", "eggs"],
            0,
            4,
        ),
    ],
    "Cakes": [
        (
            "carrot-cake",
            "Carrot Cake",
            "Spiced sponge, walnuts and cream-cheese frosting.",
            420,
            ["gluten", "milk", "eggs", "nuts"],
            14,
            4,
        ),
        (
            "lemon-drizzle",
            "Lemon Drizzle",
            "Zesty loaf cake with a crackly sugar top.",
            360,
            ["gluten", "milk", "eggs"],
            16,
            4,
        ),
        (
            "brownie",
            "Chocolate Brownie",
            "Fudgy, dark, and gluten-free.",
            340,
            ["milk", "eggs"],
            35,
            6,
        ),
    ],
}

CATEGORY_IMAGES = {
    "Coffee": "coffee",
    "Tea & Cold Drinks": "tea",
    "Pastries": "pastry",
    "Breads": "bread",
    "Sandwiches & Lunch": "lunch",
    "Cakes": "cake",
}


def sample_products(currency: str) -> list[dict[str, Any]]:
    """Product records ready for ``ProductWithInventory(**record)``."""
    products = []
    for category_index, (category, items) in enumerate(_CATEGORIES.items()):
        for item_index, (pid, name, description, price, allergens, on_hand, low) in enumerate(
            items
        ):
            products.append(
                {
                    "id": pid,
                    "name": name,
                    "description": description,
                    "category": category,
                    "price_cents": price,
                    "currency": currency,
                    "allergens": allergens,
                    "image": f"/static/img/menu/{CATEGORY_IMAGES[category]}.svg",
                    "is_available": True,
                    "sort_order": category_index * 100 + item_index,
                    "max_per_order": 10,
                    "on_hand": on_hand,
                    "reserved": 0,
                    "available": on_hand,
                    "low_stock_threshold": low,
                    "critical_threshold": max(1, low // 4),
                    "reorder_quantity": low * 4,
                }
            )
    return products
