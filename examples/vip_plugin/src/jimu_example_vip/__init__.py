"""Example third-party plugin: VIP membership cards."""
