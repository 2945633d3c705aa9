"""digest.feeds."""
