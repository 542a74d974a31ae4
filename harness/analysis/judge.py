"""The judge: one decision, per (window, user), on what an engine answered and whether it was right.

Everything the harness says about correctness and every latency come from :func:`judge`, in one frame:
``summary.json``'s counts, ``pairs.csv.gz`` and the latency histograms cannot disagree.

Input: the result records the collector kept (genuine result records only; malformed ones are counted by the
collector by kind and never reach here) and the oracle's :class:`~harness.analysis.oracle.Expected`. Records of
:data:`~harness.workload.FLUSH_USER` (the end-of-run records) are ignored.

* **Order.** Records are ordered by broker append time, then partition, then offset — everywhere. A pair always
  lands on one partition (the record key is the user), so this is its offset order.
* **Visible time** of a record (:func:`visible_ms`): when a consumer of the result topic could first read it.
  Plain output: its broker ``LogAppendTime``. Transactional output read ``read_committed``: a record is
  readable only once its transaction commits, after its append time, so visible = max(append time, the
  collector's receive time). The collector polls with a short fetch wait, so it receives a committed record
  within a few ms of the commit (bounded and tested: ≤ 20 ms, see ``harness.run.collector``).
* **Answer**: a pair's last record (engines in update mode write several; the last wins).
* **Status**: ``exact`` (answer within ``[count_min, count_max]``, or nothing written where only late events
  fell), ``wrong`` (outside the range; the signed difference to the nearest allowed count is kept),
  ``missing`` (an expected pair with no record), ``extra`` (a pair no event belongs to).
* **duplicated**: more than one record carried the final answer (a repeat is a duplicate delivery; it does not
  make the answer wrong). **late_dropped**: late (event, window) memberships not counted / windows per event.
* **Latency** of an exact answered pair: visible time of the first record carrying the final answer −
  ``window_end`` (result latency), and − the pair's largest on-time event ``ts`` (event-time latency).
* **correct**: nothing missing, wrong or extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness import workload
from harness.analysis.oracle import Expected
from harness.results import Correctness
from harness.workload import FLUSH_USER, PAIR_KEY

KEY = list(PAIR_KEY)

PAIR_COLUMNS = (
    "window_start",
    "window_end",
    "user",
    "count_min",
    "count_max",
    "got",
    "records",
    "final_records",
    "visible_ms",
    "result_latency_ms",
    "event_time_latency_ms",
    "status",
)
"""pairs.csv.gz: one row per (window, user) expected or answered."""

MAX_PROBLEMS = 20
"""Problem rows kept in the summary (all of them are in pairs.csv.gz)."""


@dataclass(frozen=True, eq=False)
class Judgement:
    pairs: pd.DataFrame
    """:data:`PAIR_COLUMNS`, sorted by window then user."""
    correctness: Correctness


def visible_ms(records: pd.DataFrame, *, read_committed: bool) -> np.ndarray:
    """When each record became readable on the result topic (:func:`harness.workload.visible_ms`), epoch ms."""
    receive = records["receive_ms"] if "receive_ms" in records else records["append_ms"]
    return workload.visible_ms(records["append_ms"].to_numpy(), receive.to_numpy(), read_committed=read_committed)


def ordered(records: pd.DataFrame) -> pd.DataFrame:
    """Result records without the flush user, in the one order: append time, partition, offset."""
    recs = records[records["user"] != FLUSH_USER]
    recs = recs.astype({"window_start": np.int64, "window_end": np.int64, "count": np.int64})
    return recs.sort_values(["append_ms", "partition", "offset"], kind="stable")


def judge(records: pd.DataFrame, expected: Expected, *, read_committed: bool) -> Judgement:
    """Judge an engine's result records against the oracle. Pure; ``records`` is not modified."""
    recs = ordered(records)
    recs = recs.assign(visible_ms=visible_ms(recs, read_committed=read_committed))
    pairs = _with_status(expected.pairs.merge(_answers(recs), on=KEY, how="outer", indicator=True))
    pairs = pairs.sort_values(["window_start", "user"], kind="stable").reset_index(drop=True)
    return Judgement(pairs[list(PAIR_COLUMNS)], _counts(pairs, expected, records=len(recs)))


def _answers(recs: pd.DataFrame) -> pd.DataFrame:
    """Per answered pair: the answer (last record), records written, and the first record with the answer."""
    grouped = recs.groupby(KEY, sort=False)
    answers = grouped.agg(got=("count", "last"), records=("count", "size")).reset_index()
    with_final = recs.merge(answers[KEY + ["got"]], on=KEY, how="left")
    final = with_final[with_final["count"] == with_final["got"]]
    firsts = (
        final.groupby(KEY, sort=False)
        .agg(visible_ms=("visible_ms", "first"), final_records=("count", "size"))
        .reset_index()
    )
    return answers.merge(firsts, on=KEY, how="left")


def _with_status(out: pd.DataFrame) -> pd.DataFrame:
    known = (out["_merge"] != "right_only").to_numpy()
    answered = (out["_merge"] != "left_only").to_numpy()
    out["count_min"] = out["count_min"].fillna(0).astype(np.int64)
    out["count_max"] = out["count_max"].fillna(0).astype(np.int64)
    low, high, got = out["count_min"].to_numpy(), out["count_max"].to_numpy(), out["got"].to_numpy(dtype=float)
    in_range = (got >= low) & (got <= high)
    out["status"] = np.select(
        [~known, ~answered & (low == 0), ~answered, in_range], ["extra", "exact", "missing", "exact"], default="wrong"
    )
    timed = (out["status"] == "exact").to_numpy() & answered
    out["records"] = out["records"].fillna(0).astype(np.int64)
    out["final_records"] = out["final_records"].fillna(0).astype(np.int64)
    out["result_latency_ms"] = (out["visible_ms"] - out["window_end"]).where(timed)
    out["event_time_latency_ms"] = (out["visible_ms"] - out["max_ts"]).where(timed)
    return out


def _counts(pairs: pd.DataFrame, expected: Expected, *, records: int) -> Correctness:
    status = pairs["status"]
    low, high, got = pairs["count_min"], pairs["count_max"], pairs["got"]
    required = low > 0
    late_rows = (high > low) & (status != "extra")
    counted = (got.fillna(low).clip(low, high) - low)[late_rows].sum()
    dropped = float((high - low)[late_rows].sum() - counted) / expected.windows_per_event
    duplicated = pairs["final_records"] > 1
    wrong = status == "wrong"
    n = {kind: int((status == kind).sum()) for kind in ("missing", "extra", "wrong")}
    return Correctness(
        expected=int(required.sum()),
        exact=int((required & (status == "exact")).sum()),
        missing=n["missing"],
        extra=n["extra"],
        wrong=n["wrong"],
        wrong_difference_sum=int((got - got.clip(low, high))[wrong].sum()),
        duplicated=int(duplicated.sum()),
        duplicate_records=int((pairs["final_records"] - 1)[duplicated].sum()),
        late_made=int(expected.late_events),
        late_dropped=dropped,
        records=int(records),
        correct=n["missing"] == 0 and n["wrong"] == 0 and n["extra"] == 0,
        problems=_problems(pairs),
    )


def _problems(pairs: pd.DataFrame) -> list[dict[str, Any]]:
    """The first problem rows, JSON-ready; difference = answer − nearest allowed count (−count_min: missing)."""
    bad = pairs[pairs["status"].isin(["missing", "wrong", "extra"])].head(MAX_PROBLEMS)
    rows = []
    for row in bad.itertuples(index=False):
        got = None if pd.isna(row.got) else int(row.got)
        if row.status == "missing":
            difference = -int(row.count_min)
        elif row.status == "extra":
            difference = got
        else:
            difference = got - min(max(got, int(row.count_min)), int(row.count_max))
        rows.append({
            "kind": row.status, "user": str(row.user), "window_start": int(row.window_start),
            "window_end": int(row.window_end), "count_min": None if row.status == "extra" else int(row.count_min),
            "count_max": None if row.status == "extra" else int(row.count_max), "count": got,
            "difference": difference,
        })
    return rows


def empty_records() -> pd.DataFrame:
    """A record frame with no rows (an engine that wrote nothing)."""
    return pd.DataFrame({
        "user": np.array([], dtype=object),
        **{c: np.array([], dtype=np.int64) for c in ("window_start", "window_end", "count", "append_ms", "offset")},
        "partition": np.array([], dtype=np.int32),
    })
