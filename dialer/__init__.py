"""Predictive dialer for telecollection (not built yet)."""
