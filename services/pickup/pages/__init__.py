"""The customer web pages: server-rendered HTML that JavaScript enhances.

The HTML comes from Jinja2 templates in ``web/templates/pages`` and the assets from
``web/static``; the pages read the same services the JSON API does, so a shopper without
JavaScript can still browse the menu and fill a cart.
"""
