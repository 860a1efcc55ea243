"""The experiments table on every store: one running experiment at a time, enforced by the
database, and exposures read back as they were written."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from movierec.experiments.exposures import Exposure, ExposureLog
from movierec.experiments.store import (
    ExperimentConflictError,
    ExperimentSpec,
    ExperimentStore,
    ExposureStore,
)

SPEC = ExperimentSpec(
    name="v2 vs v1",
    design="ab",
    control_version=1,
    treatment_version=2,
    treatment_share=0.5,
    planned_users=100,
    alpha=0.05,
    horizon_days=7.0,
    positive_rating=4.0,
)


def test_one_experiment_runs_at_a_time(store_url: str) -> None:
    stores = [ExperimentStore(store_url) for _ in range(4)]
    try:
        # Four workers (or replicas) start one at the same moment: exactly one wins.
        with ThreadPoolExecutor(len(stores)) as pool:
            futures = [pool.submit(store.create, SPEC) for store in stores]
        outcomes = [f.exception() or f.result() for f in futures]
        started = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(started) == 1
        assert all(isinstance(o, ExperimentConflictError) for o in outcomes if o not in started)
        [first] = started
        assert stores[0].running() == first
        assert len(first.salt) == 16
        stopped = stores[1].finish(first.id, "stopped", from_status="running")
        assert (stopped.status, stopped.stopped_at is not None) == ("stopped", True)
        with pytest.raises(ExperimentConflictError, match="is stopped, not running"):
            stores[2].finish(first.id, "stopped", from_status="running")
        second = stores[2].create(SPEC)  # a stopped one leaves the slot free
        assert [e.id for e in stores[3].all()] == [second.id, first.id]
        assert stores[3].running() == second
        assert stores[0].get(second.id + 1) is None
    finally:
        for store in stores:
            store.close()


def test_exposures_are_read_back_per_arm(store_url: str) -> None:
    log = ExposureLog(ExposureStore(store_url))
    try:
        log.add(Exposure(1, 10, 0, [5, 6, 7], 1_000))
        log.add(Exposure(1, 10, 1, [8], 1_000))
        log.add(Exposure(2, 11, 1, [9], 1_001))  # another experiment's
        log.add(Exposure(1, 12, 1, [], 1_002))  # an empty list is not an exposure
        log.flush()
        log.add(Exposure(1, 13, 1, list(range(20_000)), 1_003))  # over MySQL's 64 kB BLOB
        log.flush()
        shown = log.store.exposures(1)
        assert shown.codes.tolist() == [0, 1, 1]
        assert shown.users.tolist() == [10, 10, 13]
        assert shown.lengths.tolist() == [3, 1, 20_000]
        assert shown.movies[:4].tolist() == [5, 6, 7, 8]
        assert np.array_equal(shown.movies[4:], np.arange(20_000))
        assert len(log.store.exposures(3)) == 0
    finally:
        log.close()
