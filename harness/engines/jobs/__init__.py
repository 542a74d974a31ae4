"""Job code that runs inside an engine's own process (one module per engine), given a JobSpec as JSON."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"
"""Where everything a job listens on binds by default (``bind_address`` of the engines' settings)."""
WILDCARD_ADDRESSES = ("0.0.0.0", "::")
"""Bind addresses meaning "every interface"."""


def advertised_address(bind_address: str) -> str:
    """The address to give clients of a server bound to ``bind_address``: itself, or loopback for a wildcard
    (this host's own clients reach a wildcard server there)."""
    return LOOPBACK if bind_address in WILDCARD_ADDRESSES else bind_address
