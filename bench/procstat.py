"""CPU and memory of groups of processes from /proc, sampled once a second during a benchmark.

A group is a name and a function returning its pids now (workers get replaced, Kamailio forks
children), so each sample reads the CPU time of whoever is in the group at that moment. A
window's CPU share is the growth of each pid's CPU time between its first and last sample in
the window, divided by the window's wall time: 1.0 is one core busy.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in kB (PSS shares the pages a process shares with others); None once gone."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        return None
    return values.get("Rss", 0), values.get("Pss", 0)


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (Kamailio forks its children itself)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, already counted in user
    return (total - idle) / TICK, total / TICK


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # time.monotonic()
    wall: float  # time.time(), to line samples up with other clocks' stamps
    calls: int  # what the measured system said it held
    cpu: dict[str, dict[int, float]]  # group -> pid -> CPU seconds so far
    machine: tuple[float, float]


@dataclass(frozen=True, slots=True)
class GroupUsage:
    cores: float  # the group's CPU share over the window (1.0 = one core)
    processes: int
    per_process: tuple[float, ...]  # each pid's share, largest first


@dataclass
class Sampler:
    """Samples ``groups`` and ``calls()`` every ``interval`` seconds on a thread until ``stop``."""

    groups: dict[str, Callable[[], list[int]]]
    calls: Callable[[], int]
    interval: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> Sample:
        cpu: dict[str, dict[int, float]] = {}
        before = self.samples[-1].cpu if self.samples else {}
        for name, pids in self.groups.items():
            cpu[name] = dict(before.get(name, {}))  # a process gone meanwhile keeps its last figure
            cpu[name].update({pid: s for pid in pids() if (s := cpu_seconds(pid)) is not None})
        taken = Sample(time.monotonic(), time.time(), self.calls(), cpu, machine_cpu())
        self.samples.append(taken)
        return taken

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def usage(first: Sample, last: Sample) -> dict[str, GroupUsage]:
    """Each group's CPU share between two samples (pids born meanwhile count from zero)."""
    wall = max(last.at - first.at, 1e-9)
    result: dict[str, GroupUsage] = {}
    for name, now in last.cpu.items():
        before = first.cpu.get(name, {})
        shares = sorted(((s - before.get(pid, 0.0)) / wall for pid, s in now.items()), reverse=True)
        result[name] = GroupUsage(sum(shares), len(shares), tuple(shares))
    return result


def machine_usage(first: Sample, last: Sample) -> float:
    """Cores busy on the whole machine between two samples (everyone's work, not only ours)."""
    busy = last.machine[0] - first.machine[0]
    total = last.machine[1] - first.machine[1]
    cores = os.cpu_count() or 1
    return cores * busy / total if total > 0 else 0.0
