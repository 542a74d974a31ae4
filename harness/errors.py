"""Errors the CLI shows as one message, without a traceback.

Anything that is the user's to fix (a bad scenario, a missing tool, a service that would not start) is a
:class:`HarnessError`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """An error with a message meant for the person running ``bench``."""

    exit_code = 1


class ScenarioError(HarnessError):
    """The scenario file is unreadable or invalid; ``lines`` holds one message per bad field."""

    exit_code = 2

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


class SetupError(HarnessError):
    """A required tool (java, mvn) or artifact is missing: the machine's to fix, found before anything starts."""

    exit_code = 2


class ServiceError(HarnessError):
    """A service (Kafka broker, cluster) did not start, or stopped answering."""


class EngineError(HarnessError):
    """An engine job failed to start, failed while running, or produced unusable output."""
