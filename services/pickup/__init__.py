"""pickup: an order-ahead pickup ordering platform."""

__version__ = "0.1.0"
