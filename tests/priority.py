"""What scheduling priority this process may take, read from the kernel's own rules (not from the harness), so
tests of ``load.producer.nice`` know what to expect with and without privilege."""

from __future__ import annotations

import os
import resource

CAP_SYS_NICE = 23


def lowest_nice_allowed() -> int:
    """The lowest nice value setpriority() will grant: -20 with CAP_SYS_NICE (root in most places, but not in a
    default container), else what RLIMIT_NICE allows (``20 - rlim_cur``), never below the current value."""
    with open("/proc/self/status", encoding="ascii") as status:
        caps = next(int(line.split()[1], 16) for line in status if line.startswith("CapEff:"))
    if caps >> CAP_SYS_NICE & 1:
        return -20
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    current = os.getpriority(os.PRIO_PROCESS, 0)
    return min(current, 20 - soft) if soft != resource.RLIM_INFINITY else -20
