"""Call recordings (not built yet)."""
