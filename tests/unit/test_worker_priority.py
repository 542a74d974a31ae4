"""The generator workers' scheduling priority (``load.producer.nice``): applied when the OS allows it, left alone
(and reported) when it does not, and inherited by threads started afterwards, as librdkafka's are. Each case runs
in a child process so the test process keeps its own priority."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.priority import lowest_nice_allowed

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux behaviour")


def in_child(code: str) -> dict:
    script = textwrap.dedent(
        """
        import json, os, threading
        from harness.loadgen.worker import set_priority
        before = os.getpriority(os.PRIO_PROCESS, 0)
        """
    ) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(done.stdout)


def test_lowering_priority_is_always_allowed_and_threads_started_later_inherit_it() -> None:
    out = in_child(
        """
        applied = set_priority(before + 3)
        seen = {}
        def record():
            seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        t = threading.Thread(target=record); t.start(); t.join()
        print(json.dumps({"before": before, "applied": applied, "now": os.getpriority(os.PRIO_PROCESS, 0),
                          "thread": seen["thread"]}))
        """
    )
    assert out["applied"] == out["now"] == out["thread"] == min(out["before"] + 3, 19)


def test_raising_priority_applies_with_privilege_and_is_refused_quietly_without() -> None:
    out = in_child(
        """
        applied = set_priority(before - 5)
        print(json.dumps({"before": before, "applied": applied, "now": os.getpriority(os.PRIO_PROCESS, 0)}))
        """
    )
    assert out["applied"] == out["now"]
    wanted = max(out["before"] - 5, -20)
    if lowest_nice_allowed() <= wanted:
        assert out["applied"] == wanted
    else:  # without CAP_SYS_NICE the worker stays where it was, and says so through the returned value
        assert out["applied"] == out["before"]


def test_same_priority_is_a_no_op() -> None:
    out = in_child('print(json.dumps({"before": before, "applied": set_priority(before)}))')
    assert out["applied"] == out["before"]
