"""A minimal third-party-style engine, loaded by `module:Class` path in scenario tests (never started)."""

from __future__ import annotations

from typing import Literal

from harness.engines.base import Engine, EngineSettings


class FakeSettings(EngineSettings):
    mode: Literal["fast", "slow"] = "fast"


class FakeEngine(Engine):
    name = "fake"
    description = "test double for scenario validation; has no job"
    Settings = FakeSettings

    def start(self) -> None:
        raise NotImplementedError("validation-only engine")

    def wait_ready(self, timeout: float) -> None:
        raise NotImplementedError("validation-only engine")

    def stop(self) -> None:
        pass

    def fairness(self) -> dict[str, str]:
        return {}


class NotAnEngine:
    pass
