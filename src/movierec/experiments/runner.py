"""The serving side of experiments: which model answers a request, and what it showed.

Each worker keeps the running experiment (if any) and its two arms' models, found by polling
the store every :data:`REFRESH_SECONDS` in a thread of its own (never on a request), so a
worker learns of an experiment started or stopped through another worker or replica within
that time; until it has loaded the arms' models, it answers with the served model and says no
experiment. A request then costs one attribute read when nothing runs.

An arm whose registry version is the model the service serves (the usual control: the
champion) is answered by the service's own view, so its users keep the top-N lists; the arm's
own copy is the same mapped file (a registry version is downloaded once per machine), so it
costs no second copy in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from movierec.config import Settings
from movierec.experiments.assignment import INTERLEAVED, arm_of, draft_coins, unit_of
from movierec.experiments.exposures import Exposure, ExposureLog
from movierec.experiments.interleaving import TREATMENT_TEAM, team_draft
from movierec.experiments.store import ARM_CODES, Experiment, ExperimentStore
from movierec.serving.catalog import ModelView
from movierec.serving.loading import load_registry_version
from movierec.serving.service import Answer, RecommenderService, ServedModel
from movierec.serving.topn import TopN

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
Served = ServedModel
Ask = Callable[[Served | None], Answer]


@dataclass(frozen=True)
class Tag:
    """What an answer says of its experiment."""

    experiment_id: int
    name: str
    design: str
    arm: str


@dataclass(frozen=True)
class Active:
    experiment: Experiment
    arms: tuple[Served, Served]  # control, treatment


class ExperimentRunner:
    """The running experiment of this worker, and the answers it makes."""

    def __init__(
        self,
        settings: Settings,
        service: RecommenderService,
        store: ExperimentStore,
        log: ExposureLog,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.settings = settings
        self.service = service
        self.store = store
        self.log = log
        self._active: Active | None = None
        self._sync_lock = threading.Lock()
        self._stopping = threading.Event()
        self._refresh_seconds = refresh_seconds
        self._thread = threading.Thread(target=self._run, name="movierec-experiments", daemon=True)
        self._thread.start()

    @property
    def active(self) -> Active | None:
        return self._active

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self.log.close()
        self.store.close()

    # ---- the running experiment ----------------------------------------------------------

    def load_arms(self, control_version: int, treatment_version: int) -> tuple[Served, Served]:
        """Both arms' models (blocking: registry, disk); raises ModelUnavailableError."""
        return self._load(control_version), self._load(treatment_version)

    def activate(self, experiment: Experiment | None, arms: tuple[Served, Served]) -> None:
        """Serve ``experiment`` with ``arms`` already loaded (the worker that started it)."""
        with self._sync_lock:
            self._active = None if experiment is None else Active(experiment, arms)

    def sync(self) -> None:
        """Follow the store: the running experiment, its arms loaded when it is new here."""
        with self._sync_lock:
            running = self.store.running()
            current = self._active
            if running is None or (current is not None and current.experiment.id != running.id):
                self._active = None
            if running is None or (current is not None and current.experiment.id == running.id):
                return
            arms = self.load_arms(running.control_version, running.treatment_version)
            self._active = Active(running, arms)

    def _run(self) -> None:
        while not self._stopping.wait(self._refresh_seconds):
            try:
                self.sync()
            except Exception:  # the store or registry is down: retry at the next round
                logger.exception("cannot follow the running experiment")

    def _load(self, version: int) -> Served:
        """An arm's model with its own top-N lists (filled in the background, as the served
        model's): without them every answer of the arm scored its user, several times the
        cost of a listed answer."""
        loaded = load_registry_version(self.settings, version)
        loaded.model.warm_up()
        view = ModelView.build(loaded.model, self.service.state.catalog)
        view.warm_up()
        depth = min(self.settings.top_n_depth, self.settings.max_k)
        top_n = TopN(view, depth) if depth > 0 else None
        if top_n is not None:
            top_n.start()
        return ServedModel(view, loaded.info, top_n)

    # ---- answers ---------------------------------------------------------------------------

    def recommend_user(self, user_id: int, k: int, ask: Ask) -> tuple[Answer, Tag | None]:
        """The answer for a known user; ``ask(model)`` makes one arm's (None: served model)."""
        return self._answer(self._active, f"user:{user_id}", user_id, k, ask)

    def recommend_session(
        self, session_id: str | None, k: int, ask: Ask
    ) -> tuple[Answer, Tag | None]:
        """The answer for an anonymous visitor, assigned by their session (none: no
        experiment). Their later ratings cannot be told apart: no exposure is logged."""
        unit = unit_of(None, session_id)
        if unit is None:
            return ask(None), None
        return self._answer(self._active, unit, None, k, ask)

    def _answer(
        self, active: Active | None, unit: str, user_id: int | None, k: int, ask: Ask
    ) -> tuple[Answer, Tag | None]:
        if active is None:
            return ask(None), None
        experiment = active.experiment
        if experiment.design == "ab":
            arm = arm_of(experiment.salt, unit, experiment.treatment_share)
            code = ARM_CODES.index(arm)
            answer = ask(self._model(active.arms[code]))
            self._expose(experiment, user_id, [(code, answer.movie_ids)])
            return answer, _tag(experiment, arm)
        control = ask(self._model(active.arms[0]))
        treatment = ask(self._model(active.arms[1]))
        coins = draft_coins(experiment.salt, unit)
        answer, teams, shown = interleave(control, treatment, k, coins)
        movies = np.asarray(shown, dtype=np.int64)
        in_treatment = np.asarray(teams, dtype=np.int64) == TREATMENT_TEAM
        self._expose(
            experiment,
            user_id,
            [(0, movies[~in_treatment].tolist()), (1, movies[in_treatment].tolist())],
        )
        return answer, _tag(experiment, INTERLEAVED)

    def _model(self, arm: Served) -> Served | None:
        """None (the service's own, with its top-N lists) when the arm is the served model."""
        served = self.service.state.info
        info = arm.info
        if served is not None and served.source == "registry" and served.version == info.version:
            return None
        return arm

    def _expose(
        self, experiment: Experiment, user_id: int | None, lists: list[tuple[int, list[int]]]
    ) -> None:
        if user_id is None:
            return
        now = int(time.time())
        for code, movie_ids in lists:
            self.log.add(Exposure(experiment.id, user_id, code, movie_ids, now))


def interleave(
    control: Answer, treatment: Answer, k: int, coins: Iterator[int]
) -> tuple[Answer, list[int], list[int]]:
    """The team draft of two answers, in the control's view; each movie's team and id.

    Scores and reasons are the picking model's own. A movie the control's model does not know
    cannot be shown through its view and is left out (models of one registry share a catalog,
    so this is rare).
    """
    ranked = (control.movie_ids, treatment.movie_ids)  # made from the view's rows: once
    movies, teams = team_draft(ranked[0], ranked[1], k, coins)
    sources = (control, treatment)
    positions = [{movie: i for i, movie in enumerate(ids)} for ids in ranked]
    view = control.view
    items: list[int] = []
    scores: list[float] = []
    reasons: list[str | None] = []
    kept: list[int] = []
    shown: list[int] = []
    for movie, team in zip(movies, teams, strict=True):
        item = view.item_of_movie.get(movie, -1)
        if item < 0:
            continue
        source, position = sources[team], positions[team][movie]
        items.append(item)
        scores.append(source.scores[position])
        reasons.append(source.reasons[position])
        kept.append(team)
        shown.append(movie)
    answer = Answer(
        control.strategy, view, control.info, items, scores, reasons, control.ignored_movie_ids
    )
    return answer, kept, shown


def _tag(experiment: Experiment, arm: str) -> Tag:
    return Tag(experiment.id, experiment.name, experiment.design, arm)
