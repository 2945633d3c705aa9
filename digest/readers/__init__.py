"""Readers: sign-up, double opt-in, the status machine, preferences, the list, provider events."""
