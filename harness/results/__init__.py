"""Result files: the model (:mod:`.model`), the run-directory store (:mod:`.store`) and the environment
fingerprint (:mod:`.fingerprint`). The names below are the package's public surface (``bench compare``,
``bench report`` and tests import them from here)."""

from harness.results.fingerprint import environment_fingerprint
from harness.results.model import (
    FORMAT_VERSION,
    Correctness,
    CorrectnessSummary,
    FairnessValue,
    GeneratorSummary,
    InputDelaySummary,
    KeepUp,
    LatencySummary,
    RepetitionResult,
    RepetitionSummary,
    ResourceStats,
    Status,
    SustainedSummary,
    ThroughputSummary,
    Timeline,
    summary_from_json,
    to_json,
)
from harness.results.store import (
    LoadedRepetition,
    ResultError,
    RunData,
    create_run_dir,
    load_run,
    repetition_dir,
    write_repetition,
    write_run_info,
    write_run_status,
)

__all__ = [
    "FORMAT_VERSION", "Correctness", "CorrectnessSummary", "FairnessValue", "GeneratorSummary", "InputDelaySummary",
    "KeepUp", "LatencySummary", "LoadedRepetition", "RepetitionResult", "RepetitionSummary", "ResourceStats",
    "ResultError", "RunData", "Status", "SustainedSummary", "ThroughputSummary", "Timeline", "create_run_dir",
    "environment_fingerprint", "load_run", "repetition_dir", "summary_from_json", "to_json", "write_repetition",
    "write_run_info", "write_run_status",
]
