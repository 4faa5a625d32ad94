"""Routes that say who may use them, beside the handler.

Every feature adds its routes through ``Routes``: each call registers the handler with aiohttp
and writes the route's roles into the app's ``RoutePolicy`` (kept under ``ROUTE_POLICY``),
which the auth middleware reads before any handler runs. A route added without roles is
admin-only, so forgetting to declare them closes a route rather than opening it.

    routes = Routes(app)
    routes.get("/api/v1/queues", queues, roles=ANY)
    routes.get("/api/v1/agents/{agent_id}", agent, roles=ANY, own_agent=True)
    routes.get("/health", health, open=True)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from aiohttp import web

from sambung.auth.model import USER_ROLES, Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RouteKey = tuple[str, str]

AGENT, SUPERVISOR, ADMIN, METRICS = Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.METRICS
# Any role a person can have: a metrics token is not "anyone".
ANY = frozenset(USER_ROLES)
STAFF = frozenset({SUPERVISOR, ADMIN})
ADMINS = frozenset({ADMIN})
# The console's agent screen: agents, and supervisors who also take calls.
DESK = frozenset({AGENT, SUPERVISOR})


@dataclass
class RoutePolicy:
    """Who may use which route, as ``(method, canonical path)``."""

    roles: dict[RouteKey, frozenset[Role]] = field(default_factory=dict)
    # No identity needed: probes, the API description, the login form, static assets.
    open: set[RouteKey] = field(default_factory=set)
    # Routes with an agent id in the path, which an agent must match with their own.
    own_agent: set[RouteKey] = field(default_factory=set)
    # WebSockets: identified by a single-use ticket in the query, never a token or a cookie.
    ticketed: set[RouteKey] = field(default_factory=set)

    def allowed(self, key: RouteKey) -> frozenset[Role]:
        return self.roles.get(key, ADMINS)

    def declared(self) -> set[RouteKey]:
        return set(self.roles) | self.open


ROUTE_POLICY = web.AppKey("route_policy", RoutePolicy)


def policy_of(app: web.Application) -> RoutePolicy:
    """The app's policy table, made on first use."""
    if ROUTE_POLICY not in app:
        app[ROUTE_POLICY] = RoutePolicy()
    return app[ROUTE_POLICY]


class Access(TypedDict, total=False):
    """Who may use a route: ``Routes.add``'s keywords (roles, else admin-only)."""

    roles: Iterable[Role]
    open: bool
    own_agent: bool
    ticketed: bool


class Routes:
    """Adds routes to an app and records each one's roles in the app's policy."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.policy = policy_of(app)

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        roles: Iterable[Role] = ADMINS,
        open: bool = False,
        own_agent: bool = False,
        ticketed: bool = False,
    ) -> None:
        key = (method, path)
        if key in self.policy.declared():
            raise ValueError(f"route {method} {path} is declared twice")
        chosen = frozenset(roles)
        if not open and not chosen:
            raise ValueError(f"route {method} {path} names no role; say open=True if it is open")
        if own_agent and "{agent_id}" not in path:
            raise ValueError(f"route {method} {path} is own_agent but has no {{agent_id}}")
        self.app.router.add_route(method, path, handler)
        if open:
            self.policy.open.add(key)
            return
        self.policy.roles[key] = chosen
        if own_agent:
            self.policy.own_agent.add(key)
        if ticketed:
            self.policy.ticketed.add(key)

    # One line per method: the access keywords are add()'s, typed once in ``Access``.
    def get(self, path: str, handler: Handler, **access: Unpack[Access]) -> None:
        self.add("GET", path, handler, **access)

    def post(self, path: str, handler: Handler, **access: Unpack[Access]) -> None:
        self.add("POST", path, handler, **access)

    def patch(self, path: str, handler: Handler, **access: Unpack[Access]) -> None:
        self.add("PATCH", path, handler, **access)

    def delete(self, path: str, handler: Handler, **access: Unpack[Access]) -> None:
        self.add("DELETE", path, handler, **access)
