"""Two worker processes mark steps on the same journey at the same time: none is lost."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from django.db import connections

from perfmonitor import journeys
from perfmonitor.journeys.definitions import get_definition
from perfmonitor.models import UserJourney

STEPS_PER_PROCESS = 60


def mark_steps(journey_id: str, process: int, barrier: multiprocessing.synchronize.Barrier,
               ) -> None:
    names = get_definition("class_booking").step_names
    barrier.wait(timeout=30)  # both processes start hammering the row together
    failures = 0
    for i in range(STEPS_PER_PROCESS):
        if not journeys.step(journey_id, names[i % len(names)], {"process": process, "i": i}):
            failures += 1
    connections.close_all()
    os._exit(1 if failures else 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_steps_from_two_processes_are_all_recorded():
    journey_id = journeys.start("class_booking", metadata={"course": "algebra"})
    connections.close_all()  # the children open their own connections
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    workers = [context.Process(target=mark_steps, args=(journey_id, n, barrier))
               for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]

    steps = UserJourney.objects.get(journey_id=journey_id).steps
    assert len(steps) == 2 * STEPS_PER_PROCESS
    assert sorted((s["metadata"]["process"], s["metadata"]["i"]) for s in steps) == [
        (p, i) for p in range(2) for i in range(STEPS_PER_PROCESS)]
    # Each process's steps keep their order, and every step starts where the one
    # before it (from whichever process) ended: one consistent chain.
    for process in range(2):
        mine = [s["metadata"]["i"] for s in steps if s["metadata"]["process"] == process]
        assert mine == sorted(mine)
    for before, step in zip(steps, steps[1:], strict=False):
        assert step["started_at"] == before["at"] and step["duration_ms"] >= 0
    interleaved = sum(1 for a, b in zip(steps, steps[1:], strict=False)
                      if a["metadata"]["process"] != b["metadata"]["process"])
    assert interleaved > 1  # the two really ran at the same time
