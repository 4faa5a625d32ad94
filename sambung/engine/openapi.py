"""The engine's OpenAPI description: ``openapi.yaml`` next to this module, served as JSON.

The YAML is the one copy people edit; it is read and converted once per process, so serving
the description costs nothing per request and a broken file stops the engine at start-up.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import yaml


@functools.cache
def document() -> dict[str, Any]:
    text = resources.files("sambung.engine").joinpath("openapi.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError("engine/openapi.yaml is not a mapping")
    return doc


@functools.cache
def document_json() -> bytes:
    return json.dumps(document(), ensure_ascii=False, separators=(",", ":")).encode()
