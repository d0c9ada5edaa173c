"""Lockstep's flag documents as Powertools feature flags, and a store reading them from a file.

Powertools' schema is `{"name": {"default": bool, "rules": {...}}}`; a Lockstep document (either
format, docs/formats.md) carries a boolean per flag and the reserved `lockstepMetadata` entry,
which has no Powertools counterpart and is left out.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.feature_flags import StoreProvider

METADATA = "lockstepMetadata"


def to_powertools(document: dict[str, Any]) -> dict[str, Any]:
    """Freeform (`"flag": true`, or a definition `{"default": …, "rules": …}`) or AppConfig
    feature flags (`"flag": {"enabled": true}`)."""
    flags = {}
    for name, value in document.items():
        if name == METADATA:
            continue
        if isinstance(value, bool):
            flags[name] = {"default": value}
        elif isinstance(value, dict) and isinstance(value.get("enabled"), bool):
            flags[name] = {"default": value["enabled"]}
        elif isinstance(value, dict) and "default" in value:
            # A flag defined by rules is a Powertools feature already (docs/targeting.md).
            flags[name] = value
    return flags


class MemoryStore(StoreProvider):
    """Returns the same translated dict on every call: the in-memory best case."""

    def __init__(self, document: dict[str, Any]):
        self._config = to_powertools(document)

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self._config

    def get_configuration(self) -> dict[str, Any]:
        return self._config


class LocalFileStore(StoreProvider):
    """Reads the AppConfig Agent local-development file at most every `max_age` seconds, the way
    Powertools' AppConfigStore caches what it fetched."""

    def __init__(self, path: str, max_age: float = 45.0):
        self._path = path
        self._max_age = max_age
        self._config: dict[str, Any] | None = None
        self._read_at = 0.0

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        with open(self._path, encoding="utf-8") as file:
            return json.load(file)

    def get_configuration(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._config is None or now - self._read_at >= self._max_age:
            self._config = to_powertools(self.get_raw_configuration)
            self._read_at = now
        return self._config
