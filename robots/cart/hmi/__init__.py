"""The kiosk web page the cart serves to its touch screen.

``create_kiosk_app(service)`` (``robots.cart.hmi.app``) builds the FastAPI app over one ``CartService``:
the page and its static files (``static/``: hand-written HTML, CSS and JS, no CDN), the screen as JSON
and over a WebSocket, the code answer, and staff mode. ``robots.cart.hmi.wire`` is its JSON.
"""

from robots.cart.hmi.app import create_kiosk_app

__all__ = ["create_kiosk_app"]
