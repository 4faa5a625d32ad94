"""Password hashing with Argon2id (argon2-cffi, the reference implementation's bindings).

Hashing is deliberately slow (tens of milliseconds of CPU): it runs in a worker thread so call
control on the event loop never waits behind a login.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults follow RFC 9106's second recommended option (64 MiB, 3 passes).
_hasher = PasswordHasher()
# Verified against when the username is unknown, so the answer takes as long as for a real
# user and timing does not tell which usernames exist.
_DUMMY = _hasher.hash("no such user: this hash only equalises timing")


# Hashing gets its own threads, fewer than the cores: a burst of logins then leaves a core to
# the event loop (bench/login_lag.py measures the difference against the shared pool).
HASH_THREADS = max(1, (os.cpu_count() or 2) - 1)
_pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="argon2")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


async def verify(stored: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_pool, _verify, stored, password)


async def hash_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)
