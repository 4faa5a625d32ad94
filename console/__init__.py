"""The agent console and supervisor wallboard: server-rendered pages updated live over SSE."""
