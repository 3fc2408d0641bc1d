"""What machine a benchmark ran on: shared by the bench scripts (run as `python bench/x.py`,
so this module is importable by its plain name)."""

from __future__ import annotations

import contextlib
from pathlib import Path


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def total_memory_gb() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        total_kb = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        return f"{total_kb / 1024 / 1024:.1f} GB"
    return "?"
