"""Pure helpers of bench/sms_vs_kannel.py: wrk scripts that send exactly N requests, wrk's
summary, CPU per process group from /proc samples, and the table's figures.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from urllib.parse import quote

from bench.procstat import Sample

EN_DASH = "\u2013"  # ranges as the table writes them

# wrk's thread n (0-based, numbered in setup) sends requests n+1, n+1+threads, ...; it stops
# once it has its share of ``count`` answers, so the run sends N requests, not "for D seconds".
# (Requests in flight when a thread stops still reach the server: at most one per connection.)
WRK_SHARE = """
local answered = 0
function response(status, headers, body)
  answered = answered + 1
  if answered == math.floor(({count} - offset - 1) / {threads}) + 1 then
    wrk.thread:stop()
    io.stdout:write("{marker}\\n")
    io.stdout:flush()
  end
end
"""
# wrk's main thread sleeps out its duration even when every thread stopped: the bench reads
# one marker line per stopped thread, then sends SIGINT, which ends that sleep.
THREAD_DONE = "bench: wrk thread done"

WRK_NUMBERING = """
local made = 0
function setup(thread)
  thread:set('offset', made)
  made = made + 1
end
"""


def wrk_stop_after(count: int, threads: int) -> str:
    """Lua appended to a script whose ``setup`` sets each thread's ``offset``: stop each thread
    after its share of ``count`` responses."""
    return WRK_SHARE.format(count=count, threads=threads, marker=THREAD_DONE)


def thread_shares(count: int, threads: int) -> list[int]:
    """How many requests each wrk thread sends under :data:`WRK_SHARE` (sums to ``count``)."""
    return [max(0, (count - offset - 1) // threads + 1) for offset in range(threads)]


def kannel_wrk_script(count: int, threads: int, receiver_port: int, sender: str) -> str:
    """``count`` distinct Kannel ``sendsms`` GETs, one recipient each, each asking for a final
    report (``dlr-mask`` 3: delivered or failed) by a ``dlr-url`` callback naming the message."""
    callback = f"http://127.0.0.1:{receiver_port}/dlr?n=NUMBER&type=%d"
    query = (
        f"/cgi-bin/sendsms?username=bench&password=bench&from={quote(sender, safe='')}&to=1425555RECIPIENT"
        "&text=Your+verification+code+is+123456&dlr-mask=3&dlr-url=" + quote(callback, safe="")
    )
    # A Lua string.format pattern: the recipient varies as in Trunkline's requests, and the
    # callback names the message (Kannel fills in %d, the report's type, itself).
    pattern = query.replace("%", "%%").replace("RECIPIENT", "%04d").replace("NUMBER", "%d")
    return (
        WRK_NUMBERING
        + f"""
function init(args)
  index = offset + 1 - {threads}
end
function request()
  index = index + {threads}
  return wrk.format('GET', string.format("{pattern}", (index - 1) % 10000, index))
end
"""
        + wrk_stop_after(count, threads)
    )


@dataclass(frozen=True, slots=True)
class WrkSummary:
    requests: int
    non_2xx: int
    errors: int  # socket errors (connect, read, write, timeout)


def parse_wrk(output: str) -> WrkSummary:
    """The counts of wrk's summary; ValueError when its "N requests in" line is missing."""
    total = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    if total is None:
        raise ValueError(f"not a wrk summary: {output[:200]!r}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkSummary(
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    )


def group_cpu_seconds(first: Sample, last: Sample) -> dict[str, float]:
    """CPU seconds each group used between two samples: each pid's growth (a pid born
    meanwhile counts from zero; one gone meanwhile keeps its last sampled figure)."""
    used: dict[str, float] = {}
    for name, now in last.cpu.items():
        before = first.cpu.get(name, {})
        used[name] = sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in now.items())
    return used


@dataclass
class RunFigures:
    """One run of one system."""

    system: str
    accepted: int
    accepted_per_s: float
    delivered_per_s: float | None  # delivered, report in hand (Kannel: bearerbox's DLR count)
    app_per_s: float | None  # reports received by the app (the receiver)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per process group, per message
    own_cores: float = 0.0  # the run's processes, cores busy on average (1.0 = one core)
    machine_cores: float = 0.0  # the whole machine meanwhile: more than own_cores = neighbours

    @property
    def cpu_ms_total(self) -> float:
        return sum(self.cpu_ms.values())


def span(values: list[float]) -> str:
    """ "a-b" (rounded, thousands separated), or "a" when all are alike, "—" for none."""
    if not values:
        return "—"
    low, high = round(min(values)), round(max(values))
    return f"{low:,}" if low == high else f"{low:,}{EN_DASH}{high:,}"


def mean_cpu(runs: list[RunFigures]) -> dict[str, float]:
    """Each process group's mean CPU ms per message over runs, largest first."""
    names = {name for run in runs for name in run.cpu_ms}
    means = {name: statistics.fmean(run.cpu_ms.get(name, 0.0) for run in runs) for name in names}
    return dict(sorted(means.items(), key=lambda item: -item[1]))


def ratio_span(numerators: list[float], denominators: list[float]) -> str:
    """Pairwise ratios (run i of one system over run i of the other) as "a-b"."""
    ratios = [n / d for n, d in zip(numerators, denominators, strict=False) if d]
    if not ratios:
        return "—"
    low, high = min(ratios), max(ratios)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}{EN_DASH}{high:.2f}"
