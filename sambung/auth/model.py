"""The auth feature's values: roles, users, sessions, and its domain errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sambung.engine.errors import Forbidden as Forbidden  # re-exported: the auth code names it here
from sambung.engine.errors import SambungError


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    # A configured token for a metrics scraper: reads /metrics and nothing else. Never a
    # person's role (users are agents, supervisors or admins).
    METRICS = "metrics"


USER_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)


LANGUAGES = ("id", "en")
# \Z, not $: $ also matches before a trailing newline.
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}\Z")
MIN_PASSWORD = 8
MAX_PASSWORD = 256


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    agent_id: str | None
    display_name: str
    language: str
    disabled: bool
    created_at: datetime

    def view(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role.value,
            "agent_id": self.agent_id,
            "display_name": self.display_name,
            "language": self.language,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Session:
    """A live login: who, until when, and the CSRF token its pages send back."""

    user: User
    token_hash: bytes
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Identity:
    """Who is asking, however they proved it (a session or a configured API token)."""

    name: str  # username or token name; an agent token's name is the agent id
    role: Role
    agent_id: str | None
    session: Session | None = None

    @property
    def language(self) -> str:
        return self.session.user.language if self.session else "id"


class BadCredentials(SambungError):
    # One error for unknown user, wrong password and disabled account: the answer must not
    # tell a guesser which usernames exist.
    error_id = "auth.bad_credentials"
    http_status = 401
    title = "Login failed"


class RateLimited(SambungError):
    error_id = "auth.rate_limited"
    http_status = 429
    title = "Too many login attempts"

    def __init__(self, detail: str, retry_after: float, why: str = "failures") -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after
        # failures: too many wrong passwords; busy / in_flight: the password checks are all in
        # use (a burst at shift start): the person did nothing wrong and is told so.
        self.why = why


class UserExists(SambungError):
    error_id = "auth.user_exists"
    http_status = 409
    title = "User exists"


class UserNotFound(SambungError):
    error_id = "auth.user_not_found"
    http_status = 404
    title = "No such user"


class InvalidUser(SambungError):
    error_id = "auth.user_invalid"
    http_status = 422
    title = "Invalid user"
