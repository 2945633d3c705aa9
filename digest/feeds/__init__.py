"""Feeds: fetch (public addresses only, capped), parse, identify, summarise, store once, poll."""
