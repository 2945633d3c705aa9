"""digest.delivery.send."""
