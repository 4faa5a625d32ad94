"""The console's own config as frozen values, converted from the shell's settings by
``console.config``; the console's pages read this, never the settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    # What an agent may pick when pausing (the first is the default).
    pause_reasons: tuple[str, ...] = ("break", "lunch", "training", "meeting", "coaching", "admin")
    # How often the wallboard's figures are pushed to open screens.
    wallboard_refresh_seconds: float = 1.0
