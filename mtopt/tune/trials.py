"""One study: its trials, each one training run per tuning seed (:func:`run_study`).

**The budget.** A study runs until ``budget`` trials *count*: finished ones, running ones, and
ones whose training failed (a failure uses the budget, as a finished run does). Several
processes (on one machine or several, sharing the storage URL) work on one study: each asks
Optuna for a trial, then keeps it only when fewer than ``budget`` counted trials have a lower
trial number (Optuna numbers trials in the order the storage created them) and no counted
trial with a lower number has the same parameters; otherwise the trial is closed as FAIL with
``skipped`` = ``surplus`` / ``duplicate`` and never trained. So no setting is trained twice
and no study gets more than its budget, whatever the number of processes.

**Reuse.** A trial is a run of the sweep's machinery (:func:`mtopt.sweep.plan`): its recipe key
and folder under the shared runs folder; a run that is already finished there (by a sweep, an
earlier tuning, another process) is read, not trained again.

**Interruption.** Each trial records the host and process id that runs it. A RUNNING trial of
a process of this host that no longer exists was interrupted: it is closed as FAIL and its
parameters are queued again (the new trial records ``retry_of``), so the next process to ask
trains them (an unfinished run restarts from scratch; a finished one is reused).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtopt.sweep import SweepConfig, execute, load_result, plan
from mtopt.sweep.observe import TrainFn
from mtopt.sweep.spec import Spec
from mtopt.tune.space import Space, distributions

#: consecutive duplicates after which a study stops (its space holds fewer settings than the
#: budget, e.g. only choices)
MAX_DUPLICATES = 20


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _counted(t: Any, states: Any) -> bool:
    if t.state in (states.COMPLETE, states.RUNNING):
        return True
    return t.state == states.FAIL and bool(t.user_attrs.get("run_failed"))


def reap_interrupted(study: Any) -> int:
    """Close RUNNING trials of dead processes of this host as FAIL and queue their parameters
    again; the number closed."""
    from optuna.trial import TrialState

    host, n = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == host and isinstance(pid, int) and not _alive(pid):
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except Exception:  # noqa: BLE001 - another process closed it first
                continue
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
            n += 1
    return n


def _verdict(study: Any, trial: Any, budget: int) -> str | None:
    """``surplus`` / ``duplicate`` when this trial must not train, else None."""
    from optuna.trial import TrialState

    before = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number < trial.number and _counted(t, TrialState)
    ]
    if len(before) >= budget:
        return "surplus"
    if any(t.params == trial.params for t in before):
        return "duplicate"
    return None


def counted_trials(study: Any) -> int:
    from optuna.trial import TrialState

    return sum(_counted(t, TrialState) for t in study.get_trials(deepcopy=False))


def trial_runs(
    cell: tuple[str, Spec, Spec],
    space: Space,
    params: dict[str, Any],
    *,
    seeds: list[int],
    overrides: list[str],
    runs_dir: Path,
    name: str,
    threads: int = 1,
) -> list[Any]:
    """The planned runs of one trial (one per tuning seed), by the sweep's planner."""
    recipe, backbone, method = cell
    spec = space.concrete(params)
    cfg = SweepConfig(
        name=name,
        recipes=[recipe],
        backbones=[backbone],
        methods=[spec],
        seeds=list(seeds),
        overrides=list(overrides),
    )
    return plan(cfg, runs_dir, threads=threads)


def score(records: list[dict[str, Any]]) -> float | None:
    """The trial's value: the mean over its runs of the validation AUC average; None when a
    run failed or has no value."""
    vals = []
    for r in records:
        v = (r.get("val") or {}).get("auc_avg") if r.get("status") == "ok" else None
        if v is None:
            return None
        vals.append(float(v))
    return sum(vals) / len(vals) if vals else None


def run_study(
    study: Any,
    cell: tuple[str, Spec, Spec],
    space: Space,
    *,
    budget: int,
    seeds: list[int],
    overrides: list[str],
    runs_dir: Path,
    threads: int = 1,
    train_fn: TrainFn | None = None,
    on_trial: Callable[[], None] | None = None,
) -> int:
    """Ask, train (or reuse) and tell until the study has ``budget`` counted trials; the number
    of trials this process ran."""
    from optuna.trial import TrialState

    reap_interrupted(study)
    dists = distributions(space)
    ran = dupes = 0
    while counted_trials(study) < budget:
        trial = study.ask(fixed_distributions=dists)
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        why = _verdict(study, trial, budget)
        if why is not None:
            trial.set_user_attr("skipped", why)
            study.tell(trial, state=TrialState.FAIL)
            dupes += why == "duplicate"
            if why == "surplus" or dupes >= MAX_DUPLICATES:
                break
            continue
        dupes = 0
        runs = trial_runs(
            cell,
            space,
            dict(trial.params),
            seeds=seeds,
            overrides=overrides,
            runs_dir=runs_dir,
            name=study.study_name,
            threads=threads,
        )
        records, reused = [], 0
        for run in runs:
            rec = load_result(run)
            if rec is not None and rec.get("status") == "ok":
                reused += 1
            else:
                rec = execute(run.payload(), train_fn)
            records.append(rec)
        trial.set_user_attr("keys", [r.key for r in runs])
        trial.set_user_attr("run_dirs", [str(r.run_dir) for r in runs])
        trial.set_user_attr("reused", reused)
        value = score(records)
        if value is None:
            trial.set_user_attr("run_failed", True)
            errors = [r.get("error") for r in records if r.get("status") != "ok"]
            trial.set_user_attr("error", str(errors[:1])[:300])
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
        ran += 1
        if on_trial is not None:
            on_trial()
    return ran
