"""What may watch a run's loads as they go (``bench capacity``'s stepped trials): the :class:`LoadWatch` interface
:func:`harness.run.runner.run_scenario` takes, and the :class:`LiveView` it is shown during each load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.analysis.oracle import Expected
from harness.analysis.repetition import RepetitionInputs
from harness.loadgen import Progress
from harness.run.collector import LiveCollector
from harness.scenario import Scenario


@dataclass(frozen=True)
class LiveView:
    """What a :class:`LoadWatch` sees during the load, about twice a second."""

    scenario: Scenario
    progress: Progress
    collector: LiveCollector
    """The output read so far (:meth:`LiveCollector.frame`, :meth:`LiveCollector.settle_state`)."""
    expected: Expected
    """The oracle's table of the whole planned load, at this repetition's start."""
    metrics: Callable[[], dict[str, Any]]
    """The engine's metrics now (``Engine.metrics()``; ``{"error": ...}`` when they could not be read)."""


class LoadWatch(Protocol):
    """Watches every engine × repetition of a run as it goes (``bench capacity``'s stepped trials); optional."""

    def during_load(self, view: LiveView) -> int | None:
        """Called with every progress report of the load: a load offset in ms (a whole second, after
        ``view.progress.elapsed_ms``) ends the load there (:data:`harness.loadgen.generator.StopCallback`), None
        goes on."""
        ...

    def analysed(self, inputs: RepetitionInputs) -> None:
        """Called once per engine × repetition, after its result was written, with what the analysis was given
        (the scenario cut to where the load ended, when it was ended early)."""
        ...

