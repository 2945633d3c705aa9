"""digest.readers."""
