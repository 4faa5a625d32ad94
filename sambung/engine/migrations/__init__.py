"""Versioned SQL migrations, applied in order by ``sambung migrate``."""
