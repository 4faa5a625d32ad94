"""Users, roles, login sessions and the audit log of privileged actions."""
