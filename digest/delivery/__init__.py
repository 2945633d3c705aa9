"""Delivery: editions claimed once, batches planned, claimed, sent, recorded and reconciled."""
