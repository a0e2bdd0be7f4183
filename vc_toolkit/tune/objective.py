"""Workers of a study: check it, create or resume it, then run trials until its budget is spent.

:func:`prepare` checks everything before the first trial and creates or resumes the
study; :func:`work` runs trials (:mod:`vc_toolkit.tune.trial`) one after the other.
Any number of workers may run one study at once: processes of ``vc-tune run
--n_workers N``, or ``vc-tune run`` started separately, on this machine or on
several that share the storage.

* Creating the study, marking stale trials and starting a trial happen under the
  study's lock (:func:`vc_toolkit.tune.storage.study_lock`), so the study never gets
  more than its ``n_trials`` trials and never two trials with one number.
* Every worker samples trial ``N`` with a seed drawn from the study's seed and ``N``
  (:mod:`vc_toolkit.tune.sampling`): workers started at the same moment do not
  propose the same parameters, and a single worker reproduces a study from its seed.
* A running trial writes a heartbeat. A trial whose worker is gone (its process
  on this host no longer exists, or no heartbeat for 5 periods) is marked FAIL with
  the user attribute ``interrupted`` and does not count towards ``n_trials``: a new
  trial replaces it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

import optuna
from optuna.trial import TrialState

from vc_toolkit import log
from vc_toolkit.config import load_tag
from vc_toolkit.config.core import build, to_dict
from vc_toolkit.config.tag import TagConfig
from vc_toolkit.lock import pid_alive
from vc_toolkit.paths import Layout
from vc_toolkit.train.setup import ensure_features
from vc_toolkit.tune.study import (
    StudyConfig,
    check_base,
    interrupted,
    load_study,
    locked,
    open_study,
    pin,
    trial_sampler,
)
from vc_toolkit.tune.trial import Context as Context
from vc_toolkit.tune.trial import Outcome as Outcome
from vc_toolkit.tune.trial import budget, run_trial, tell, trial_config
from vc_toolkit.tune.trial import set_dotted as set_dotted
from vc_toolkit.tune.trial import suggest as suggest

logger = log.get("tune")
HOST = socket.gethostname()


def prepare(name: str, layout: Layout, n_workers: int = 1, device: str | None = None) -> Context:
    """Check everything before the first trial; create or resume the study.

    Validates the study config and search space, the base tag (and that it can
    produce the objective), its features, and the study's pinned settings;
    marks trials left running by stopped workers as failed.

    Raises:
        UserError: any of those checks failed.
    """
    cfg, space = load_study(name, layout)
    base_cfg = load_tag(cfg.base_tag, layout.root)
    check_base(cfg, base_cfg, space)
    ensure_features(base_cfg.spk, layout)
    base = to_dict(base_cfg)
    threads = cfg.threads_per_worker or max(1, (os.cpu_count() or 1) // n_workers)
    build(TagConfig, trial_config(base, {}, budget(cfg, base, threads)), where=f"study {name}")
    trial_sampler(cfg.sampler)  # e.g. cmaes without its package: refused before the study opens
    ctx = Context(name, cfg, space, base, layout, device or cfg.device, threads)
    with locked(cfg, layout, name):  # workers started at once create the study once
        study = open_study(cfg, name, layout)
        pin(study, cfg, base)
        fail_stale_trials(study, 5 * cfg.heartbeat_seconds)
    return ctx


def work(ctx: Context, worker: int = 0) -> int:
    """Run trials until the study has ``n_trials`` trials or ``timeout`` passed.

    Several workers (processes, machines) may share the storage: taking a new
    trial happens under the study's lock, so all of them together start exactly
    the trials that are missing. Interrupted trials are not counted (they are
    replaced).

    Args:
        ctx: What :func:`prepare` returned.
        worker: Index of a worker spawned by ``--n_workers`` (0 otherwise).

    Returns:
        The number of trials this worker ran.
    """
    study = open_study(ctx.cfg, ctx.name, ctx.layout, sampler=trial_sampler(ctx.cfg.sampler))
    started, done = time.monotonic(), 0
    while True:
        with locked(ctx.cfg, ctx.layout, ctx.name):
            fail_stale_trials(study, 5 * ctx.cfg.heartbeat_seconds)
            if not _budget_left(ctx.cfg, study, started):
                return done
            trial = study.ask()
            for key, value in (("host", HOST), ("pid", os.getpid()), ("heartbeat", time.time())):
                trial.set_user_attr(key, value)
        logger.info("trial %d started", trial.number)  # tests count the trials of a worker by it
        try:
            with _Heartbeat(trial, ctx.cfg.heartbeat_seconds):
                outcome = run_trial(ctx, trial)
            tell(ctx, study, trial, outcome)
        except optuna.exceptions.UpdateFinishedTrialError:
            logger.warning("trial %d was marked failed by another worker; dropped", trial.number)
        except BaseException as err:
            _give_up(study, trial, err)
            raise
        done += 1


def _budget_left(cfg: StudyConfig, study: optuna.Study, started: float) -> bool:
    if cfg.timeout is not None and time.monotonic() - started >= cfg.timeout:
        logger.info("timeout of %g s reached; no new trial", cfg.timeout)
        return False
    if cfg.n_trials is None:
        return True
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    counted = [t for t in study.get_trials(False, states=states) if not interrupted(t)]
    if len(counted) >= cfg.n_trials:
        logger.info("the study has its %d trials", cfg.n_trials)
        return False
    return True


def _give_up(study: optuna.Study, trial: optuna.Trial, err: BaseException) -> None:
    """Mark ``trial`` failed after an unexpected error or Ctrl-C (the worker stops)."""
    stopped = isinstance(err, KeyboardInterrupt)
    reason = "interrupted: the worker was stopped (Ctrl-C)" if stopped else f"error: {err!r}"
    with contextlib.suppress(Exception):
        trial.set_user_attr("fail_reason", reason)
        if stopped:
            trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)


class _Heartbeat:
    """Background thread writing the time to the trial's ``heartbeat`` attribute."""

    def __init__(self, trial: optuna.Trial, seconds: float):
        self.trial, self.seconds = trial, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except optuna.exceptions.UpdateFinishedTrialError:
                return
            except Exception as err:  # storage hiccup: try again at the next beat
                logger.warning("trial %d: heartbeat not written (%s)", self.trial.number, err)


def fail_stale_trials(study: optuna.Study, grace: float) -> list[int]:
    """Mark RUNNING trials whose worker is gone as FAIL and ``interrupted`` (replaced later).

    A trial is stale when its worker ran on this host and that process no
    longer exists, or when its heartbeat is older than ``grace`` seconds.
    ``fail_reason`` says which.

    Returns:
        Numbers of the trials marked failed.
    """
    now, failed = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs, pid = t.user_attrs, t.user_attrs.get("pid")
        beat = attrs.get("heartbeat") or (t.datetime_start.timestamp() if t.datetime_start else now)
        if attrs.get("host") == HOST and isinstance(pid, int) and not pid_alive(pid):
            reason = f"interrupted: its worker (pid {pid} on {HOST}) is gone"
        elif now - beat > grace:
            reason = f"interrupted: no heartbeat from its worker for {now - beat:.0f} s"
        else:
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "fail_reason", reason)
            study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            study.tell(t.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            continue  # it finished meanwhile
        logger.warning(
            "trial %d was left running (%s); marked failed, a new trial replaces it",
            t.number,
            reason,
        )
        failed.append(t.number)
    return failed
