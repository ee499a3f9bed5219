"""Memory a build let go is handed back to the system, not kept by the allocator."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from alliance_qa.memory import release_freed_memory


def _resident_mib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status
                    if line.startswith("VmRSS"))


@pytest.mark.unit
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_freed_arrays_leave_the_process_once_released():
    """Many small arrays (from the heap, below the allocator's mmap threshold) freed while
    a later one is alive stay resident until released."""
    arrays = [np.ones(8000) for _ in range(3000)]          # 64 KB each, ~180 MiB, written
    alive = np.ones(8000)                                  # above them on the heap
    holding = _resident_mib()
    del arrays
    release_freed_memory()
    assert holding - _resident_mib() > 150
    assert alive.sum() == 8000
