"""IVR for hotlines. For now: the hotline greeting that answers a call, plays and hangs up."""
