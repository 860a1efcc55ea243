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

ML20M = (20_000_000, 138_493, 27_278)  # ratings, users, items
SMALL = (1_000_000, 7_000, 3_000)


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """``--small``, ``--ratings/--users/--items`` and ``--seed`` of the synthetic data."""
    parser.add_argument("--small", action="store_true", help="1M ratings, 7,000 x 3,000")
    parser.add_argument("--ratings", type=int)
    parser.add_argument("--users", type=int)
    parser.add_argument("--items", type=int)
    parser.add_argument("--seed", type=int, default=0)


def resolve_sizes(args: argparse.Namespace) -> None:
    """Fill the sizes not given: ``--small`` replaces the ML-20M defaults (explicit ones win)."""
    sizes = SMALL if args.small else ML20M
    for name, default in zip(("ratings", "users", "items"), sizes, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)


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
