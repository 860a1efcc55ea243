"""Helpers the benchmark scripts share: the machine's description and a process's memory."""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def rss_bytes(field_name: str = "VmHWM") -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc; getrusage elsewhere.

    /proc's high-water mark belongs to this process image alone, whereas ``ru_maxrss`` survives
    exec and could report the parent's size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def cpu_model() -> str:
    """The CPU's marketing name, for the results' header."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_json_report(
    path: Path, args: argparse.Namespace, machine: dict[str, Any], **sections: Any
) -> None:
    """The run's date, arguments and machine, with the benchmark's own ``sections``, as JSON."""
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine,
        **sections,
    }
    path.write_text(json.dumps(report, indent=2))
