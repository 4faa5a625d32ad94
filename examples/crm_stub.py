"""A stand-in for a debt-collection system's account API, for the example hotline.

``GET /accounts/<account>`` answers the account's name, amount due and days past due as a flat
JSON object of strings (what the IVR's lookup node turns into call attributes), 404 for an
unknown account. ``--delay`` slows every answer, to try the lookup's timeout and fallback.

    python -m examples.crm_stub --port 8490
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from aiohttp import web

ACCOUNTS = Path(__file__).with_name("crm_accounts.json")


def build_app(accounts: dict[str, dict[str, str]], delay: float = 0.0) -> web.Application:
    async def account(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        acct = request.match_info["account"]
        data = accounts.get(acct)
        if data is None:
            return web.json_response({"error": f"unknown account {acct}"}, status=404)
        return web.json_response({"account": acct, **data})

    app = web.Application()
    app.router.add_get("/accounts/{account}", account)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8490)
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    accounts = json.loads(ACCOUNTS.read_text())
    web.run_app(
        build_app(accounts, args.delay), host=args.host, port=args.port, print=lambda *_: None
    )


if __name__ == "__main__":
    main()
