"""CPU time of process trees and of the whole machine, read from /proc.

Times are in seconds. A process's ``utime + stime`` covers all its threads (the
perfmonitor flusher thread included); ``cutime + cstime`` of a parent grows when
it reaps a child, so a tree's total stays right when a worker is replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcTimes:
    pid: int
    ppid: int
    own: float  # utime + stime, seconds
    children: float  # cutime + cstime of reaped children, seconds


def read_times(pid: int) -> ProcTimes | None:
    """Times of one process, or None when it no longer exists."""
    return read_times_path(f"/proc/{pid}/stat", pid)


def _stat_fields(path: str) -> list[str] | None:
    """The fields of a ``/proc/.../stat`` file after the command name (state first), or
    None when the process is gone."""
    try:
        with open(path, "rb") as handle:
            data = handle.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(")") + 2:].split()


def read_times_path(path: str, pid: int) -> ProcTimes | None:
    fields = _stat_fields(path)
    if fields is None:
        return None
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ProcTimes(pid, int(fields[1]), (utime + stime) / TICKS, (cutime + cstime) / TICKS)


def thread_times(pid: int) -> float:
    """CPU seconds of a process's threads other than its main thread (flushers, transports)."""
    total = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0.0
    for tid in tids:
        if int(tid) == pid:
            continue
        times = read_times_path(f"/proc/{pid}/task/{tid}/stat", int(tid))
        if times is not None:
            total += times.own
    return total


def children_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        times = read_times(int(entry))
        if times is not None and times.ppid == parent:
            found.append(times.pid)
    return found


@dataclass
class TreeSnapshot:
    """A parent and its live children: their own times plus the parent's reaped ones."""

    parent: int
    own: dict[int, float] = field(default_factory=dict)
    reaped: float = 0.0
    threads: dict[int, float] = field(default_factory=dict)  # children's non-main threads

    @classmethod
    def take(cls, parent: int) -> TreeSnapshot:
        snap = cls(parent)
        root = read_times(parent)
        if root is None:
            return snap
        snap.own[parent] = root.own
        snap.reaped = root.children
        for pid in children_of(parent):
            times = read_times(pid)
            if times is not None:
                snap.own[pid] = times.own
                snap.threads[pid] = thread_times(pid)
        return snap

    def total(self) -> float:
        return sum(self.own.values()) + self.reaped


def tree_cpu_between(start: TreeSnapshot, end: TreeSnapshot) -> float:
    """CPU seconds the tree used between two snapshots (replaced children included)."""
    return end.total() - start.total()


def thread_cpu_between(start: TreeSnapshot, end: TreeSnapshot) -> float:
    """CPU seconds of the children's background threads, for children alive at both ends."""
    return sum(end.threads[pid] - start.threads[pid] for pid in end.threads
               if pid in start.threads)


@dataclass
class PidSetSnapshot:
    """Own times of a set of unrelated processes (PostgreSQL backends of one database)."""

    own: dict[int, float] = field(default_factory=dict)

    @classmethod
    def take(cls, pids: set[int]) -> PidSetSnapshot:
        snap = cls()
        for pid in pids:
            times = read_times(pid)
            if times is not None:
                snap.own[pid] = times.own
        return snap


def pidset_cpu_between(start: PidSetSnapshot, end: PidSetSnapshot) -> tuple[float, int]:
    """CPU seconds between snapshots, and how many processes vanished (their time is lost).

    A process only in ``end`` started inside the window: all its time counts.
    """
    used = 0.0
    for pid, value in end.own.items():
        used += value - start.own.get(pid, 0.0)
    vanished = sum(1 for pid in start.own if pid not in end.own)
    return used, vanished


def machine_busy() -> float:
    """CPU seconds all cores spent working since boot (user, nice, system, irq, softirq)."""
    with open("/proc/stat", encoding="ascii") as handle:
        parts = handle.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in parts[1:8])
    return (user + nice + system + irq + softirq) / TICKS


def _sched_ns(path: str) -> int | None:
    """``se.sum_exec_runtime`` of one task, in ns (ms with 6 decimals in the file)."""
    try:
        with open(path, "rb") as handle:
            for line in handle:
                if line.startswith(b"se.sum_exec_runtime"):
                    ms = line.split(b":", 1)[1].strip().decode()
                    whole, _, frac = ms.partition(".")
                    return int(whole) * 1_000_000 + int((frac + "000000")[:6])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def fault_counts(pids: Iterable[int]) -> tuple[int, float, float]:
    """(minor page faults, user seconds, system seconds) of processes, all threads summed.

    From ``/proc/<pid>/stat``: times in 10 ms ticks, so only sums over a window
    of seconds mean anything. Tells a monitor's kernel-side cost (page faults on
    memory the allocator gave back and takes again) from its Python-side one.
    """
    faults, user, system = 0, 0.0, 0.0
    for pid in pids:
        fields = _stat_fields(f"/proc/{pid}/stat")
        if fields is None:
            continue
        faults += int(fields[7])
        user += int(fields[11]) / TICKS
        system += int(fields[12]) / TICKS
    return faults, user, system


def task_cpu_ns(pid: int, main_thread: bool = True) -> int:
    """CPU time of all live threads of a process, in ns, from ``/proc/<pid>/task/*/sched``.

    Nanoseconds, where ``/proc/<pid>/stat`` counts 10 ms ticks. 0 for a gone process.
    ``main_thread=False`` leaves the main thread out: for a gunicorn sync worker, the
    threads other than the one serving requests (perfmonitor's flusher, sentry-sdk's
    transport).
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0
    total = 0
    for tid in tids:
        if not main_thread and tid == str(pid):
            continue
        ns = _sched_ns(f"/proc/{pid}/task/{tid}/sched")
        if ns is not None:
            total += ns
    return total


CGROUP_V1 = "/sys/fs/cgroup"


class CpuGroup:
    """A cgroup (v1 ``cpu`` + ``cpuacct``) holding one server's processes.

    ``usage_ns()`` is the CPU every task that ever ran in the group used while in
    it, threads that exited included; equal ``cpu.shares`` give two groups equal
    CPU when both want more than their half. None from ``create`` where the
    hierarchies are not there or not writable.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.dirs = [os.path.join(CGROUP_V1, ctl, name) for ctl in ("cpu", "cpuacct")]
        self.members: set[int] = set()

    @classmethod
    def create(cls, name: str) -> CpuGroup | None:
        group = cls(name)
        try:
            for path in group.dirs:
                os.makedirs(path, exist_ok=True)
            with open(os.path.join(group.dirs[0], "cpu.shares"), "w") as handle:
                handle.write("1024")
        except OSError:
            group.remove()
            return None
        return group

    def add(self, pids: Iterable[int]) -> None:
        """Move processes (and all their threads) into the group; children forked later follow."""
        for pid in pids:
            if pid in self.members:
                continue
            try:
                for path in self.dirs:
                    with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                        handle.write(str(pid))
            except (ProcessLookupError, FileNotFoundError, OSError):
                continue
            self.members.add(pid)

    def usage_ns(self) -> int:
        with open(os.path.join(self.dirs[1], "cpuacct.usage"), encoding="ascii") as handle:
            return int(handle.read())

    def remove(self) -> None:
        """Move what is left back to the root and delete the group."""
        for path in self.dirs:
            root = os.path.dirname(path)
            try:
                with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as handle:
                    left = handle.read().split()
                for pid in left:
                    try:
                        with open(os.path.join(root, "cgroup.procs"), "w") as handle:
                            handle.write(pid)
                    except OSError:
                        pass
                os.rmdir(path)
            except OSError:
                pass
        self.members.clear()
