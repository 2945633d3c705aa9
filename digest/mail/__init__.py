"""Mail: an edition rendered once, the per-reader message and its headers, the transports."""
