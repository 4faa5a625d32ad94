"""Hot reload of flow files through the API: a good file swaps in, a bad one is refused."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.fakes.fake_ari import FakeAri
from tests.integration.harness import TOKEN, running_engine

FLOW = """
flow: reloadable
dids: ["1502"]
default_language: en
languages: [en]
start: bye
nodes:
  bye: {type: hangup, prompts: [%s], reason: ivr_completed}
"""


async def test_reload_swaps_a_good_flow_and_refuses_a_bad_one(
    fake_ari: FakeAri, tmp_path: Path
) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW % "vm-goodbye")
    async with running_engine(
        fake_ari.base_url,
        ami={"enabled": False},
        ivr={"flows": [path], "sounds_root": None, "queues": []},
    ) as run:
        v1 = run.engine.flows.by_did["1502"].version
        url = f"http://127.0.0.1:{run.engine.http_port}/api/v1/flows/reload"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:
            path.write_text(FLOW % "hello-world")
            async with http.post(url, headers=auth) as resp:
                assert resp.status == 200
                body = await resp.json()
            v2 = run.engine.flows.by_did["1502"].version
            assert v2 != v1
            assert body["flows"][0]["version"] == v2[:12]

            path.write_text(FLOW.replace("start: bye", "start: byee") % "hello-world")
            async with http.post(url, headers=auth) as resp:
                assert resp.status == 422
                problem = await resp.json()
            assert problem["error_id"] == "ivr.flow_invalid"
            assert "byee" in problem["detail"]
            assert str(path) in problem["detail"]
            assert run.engine.flows.by_did["1502"].version == v2  # the old one stays

            async with http.post(url) as resp:
                assert resp.status == 401
        m = run.engine.metrics.ivr_flow_reloads
        assert m.labels(result="ok")._value.get() == 1
        assert m.labels(result="refused")._value.get() == 1
