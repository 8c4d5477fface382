"""The shopper's cart: signed identity, priced view, availability-checked writes."""
