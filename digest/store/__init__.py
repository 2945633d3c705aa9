"""digest.store."""
