"""Hold queues and skill-based routing to agents (not built yet)."""
