"""digest.mail."""
