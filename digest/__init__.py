"""digest: a self-hosted newsletter digest service for a blog."""

__version__ = "0.1.0"
