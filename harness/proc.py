"""Deprecated location of :mod:`harness.infra.proc` (the plug-in interface's :class:`ManagedProcess`).

Engines outside this repository import ``from harness.proc import ManagedProcess``; that keeps working, with a
DeprecationWarning. Import from :mod:`harness.infra.proc` instead."""

import warnings

from harness.infra.proc import TAIL_LINES, ManagedProcess

__all__ = ["TAIL_LINES", "ManagedProcess"]

warnings.warn("harness.proc moved to harness.infra.proc; import ManagedProcess from there",
              DeprecationWarning, stacklevel=2)
