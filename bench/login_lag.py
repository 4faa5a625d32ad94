"""Logins and the event loop: password checks on the loop, in asyncio's shared thread pool,
and in the engine's own pool of (cores - 1) threads, in one run.

Argon2id is slow on purpose (64 MiB, 3 passes). This measures what a burst of logins does to
the loop that also runs call control: a 10 ms sleep's overshoot is sampled all along while N
logins run C at a time. Also prints one verification's time.

    .venv/bin/python -m bench.login_lag                  # 40 logins, 8 at a time
    .venv/bin/python -m bench.login_lag --logins 100 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from sambung.auth import passwords

PASSWORD = "correct horse battery staple"


async def probe(stop: asyncio.Event, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.01)
        lags.append(loop.time() - t - 0.01)


async def burst(stored: str, logins: int, concurrency: int, mode: str) -> dict[str, float]:
    lags: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(stop, lags))
    await asyncio.sleep(0.2)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            if mode == "own pool":
                ok = await passwords.verify(stored, PASSWORD)
            elif mode == "shared pool":
                # asyncio's default executor: min(32, cores + 4) threads
                ok = await asyncio.to_thread(passwords._verify, stored, PASSWORD)
            else:
                ok = passwords._verify(stored, PASSWORD)  # on the loop: the baseline
                await asyncio.sleep(0)
            assert ok

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(logins)))
    elapsed = time.monotonic() - t0
    stop.set()
    await prober
    lags.sort()
    return {
        "logins_per_s": logins / elapsed,
        "p50": 1000 * statistics.median(lags),
        "p99": 1000 * lags[int(0.99 * (len(lags) - 1))],
        "max": 1000 * lags[-1],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--logins", type=int, default=40)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()
    stored = passwords.hash_password(PASSWORD)
    t = time.perf_counter()
    for _ in range(5):
        passwords._verify(stored, PASSWORD)
    print(f"one Argon2id verification: {1000 * (time.perf_counter() - t) / 5:.1f} ms")
    print(f"{args.logins} logins, {args.concurrency} at a time")
    print(f"{'check':>11} {'logins/s':>9} {'loop lag p50':>13} {'p99':>9} {'max':>9}")
    for name in ("on loop", "shared pool", "own pool"):
        r = asyncio.run(burst(stored, args.logins, args.concurrency, name))
        print(
            f"{name:>11} {r['logins_per_s']:>9.1f} {r['p50']:>11.2f}ms {r['p99']:>7.1f}ms "
            f"{r['max']:>7.1f}ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
