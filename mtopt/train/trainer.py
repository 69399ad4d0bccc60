"""The training loop behind ``mtopt train``: recipe -> dataset, backbone, method -> metrics.

Per batch the trainer computes the per-task losses with ``model.losses(batch)`` and hands them
to ``method.step(losses)`` (methods with ``needs_closure = True`` also get ``closure=fn`` where
``fn()`` recomputes the per-task losses on the same batch, e.g. for FAMO's post-step loss). It
evaluates per-task validation AUC at the end of every epoch (or every ``train.eval_every``
steps), keeps the best model by average validation AUC together with its test AUCs (the PUB
paper reports the best-validation model), and writes into the output folder:

- ``steps.csv``: one row per step (joint and per-task loss, task weights / α, solver status,
  and ``extra``: the method's numeric per-step extras as compact JSON);
- ``metrics.csv``: one row per evaluation (train loss since the last one, validation AUC and
  log-loss per task and on average, test AUC when the validation average improved);
- ``summary.json``: the best evaluation's validation and test AUCs, α statistics per task,
  solver status counts, time: ``seconds`` (the whole loop), ``train_seconds`` (the training
  steps, data reading included; neither evaluation nor checkpoints), ``eval_seconds`` (the
  validation / test evaluations) and ``samples_per_second`` (samples / ``train_seconds``);
- ``checkpoints/last.pt`` (resume point: model, method state, RNG states, data position) and
  ``checkpoints/best.pt`` (best model), written atomically and loadable with
  ``torch.load(weights_only=True)``;
- ``plots/*.png`` and, if asked for, TensorBoard event files.

Several processes (``torchrun --nproc-per-node N -m mtopt train recipe.yaml``, see
:mod:`mtopt.distributed` and docs/scaling.md): every process takes its slice of the same global
batches (``data.shard: global``) or reads its own local batches of ``batch_size / N`` rows
(``data.shard: rank``, datasets with ``supports_rank_shard``; one all-reduce of the local row
counts per step gives the global batch size and ends the epoch on every process together),
losses and gradients are averaged across processes so that parameters stay bitwise identical
(checked at every checkpoint), and rank 0 alone evaluates and writes the files above.

Reproducibility: everything is seeded from ``train.seed``; ``resume=True`` restores the RNG states
and skips the batches of the current epoch already consumed, so an interrupted and resumed run
ends bitwise identical to an uninterrupted one on CPU (datasets yield the same batches for the
same ``(split, batch_size, shuffle, seed, epoch)``).
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from mtopt.config import Recipe
from mtopt.deprecation import moved
from mtopt.distributed import DistContext, attach, setup, shard_batch
from mtopt.errors import InputError, RunError
from mtopt.io import atomic_write_json, atomic_write_text
from mtopt.train import build, rundir
from mtopt.train.checkpoint import check_training_checkpoint, load_checkpoint
from mtopt.train.divergence import DIVERGENCE_FACTOR, Divergence
from mtopt.train.evaluation import Evaluation
from mtopt.train.leakage import check_leakage
from mtopt.train.logs import check_tensorboard
from mtopt.train.metrics import Accumulator, RunningStats, to_device
from mtopt.train.sharding import RankSharding
from mtopt.train.state import CHECKPOINT_FORMAT, CheckpointState
from mtopt.train.steplog import StepLogging
from mtopt.train.validate import check_train_split

__all__ = ["DIVERGENCE_FACTOR", "Trainer", "train"]

#: names that moved out of this module (kept here for one release, with a DeprecationWarning)
__getattr__, _ = moved(
    __name__,
    {
        "build_components": "mtopt.train.build",
        "embedding_kwargs": "mtopt.train.build",
        "CHECKPOINT_VERSION": "mtopt.train.state",
        "RESUMABLE_CHANGES": "mtopt.train.rundir",
        "RUN_DIRS": "mtopt.train.rundir",
        "RUN_FILES": "mtopt.train.rundir",
    },
)


class Trainer(CheckpointState, Divergence, Evaluation, RankSharding, StepLogging):
    """Runs one recipe into one output folder (see the module docstring).

    Args:
        recipe: a validated recipe.
        out_dir: output folder; default ``recipe.output.dir`` or ``runs/<source stem>``.
        source: the recipe's file name, used in messages and for the default folder.
        components: optional ``(dataset, model, method)`` built by the caller instead of from
            the registry (the model must already be seeded and on the device).
    """

    def __init__(
        self,
        recipe: Recipe,
        out_dir: str | Path | None = None,
        *,
        source: str = "recipe",
        components: tuple[Any, Any, Any] | None = None,
    ) -> None:
        self.recipe = recipe
        self.source = source
        if out_dir is None:
            out_dir = recipe.output.dir or str(Path("runs") / Path(source).stem)
        self.out = Path(out_dir)
        self._components = components
        self.warnings: list[str] = []
        self.dist = DistContext()
        self.device = recipe.train.device
        #: each process reads its own local batches (``data.shard: rank``, set by ``run``)
        self.by_rank = False

    # ----------------------------------------------------------------------------------------
    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    # ----------------------------------------------------------------------------------------
    def run(self, *, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
        """Train (or continue, with ``resume``) and return the summary dict."""
        tr = self.recipe.train
        if tr.device == "cuda" and not torch.cuda.is_available():
            raise InputError(f"{self.source}: train.device: cuda is not available here; use cpu")
        threads_before = torch.get_num_threads()
        if tr.threads is not None:
            torch.set_num_threads(tr.threads)
        # several processes (torchrun): WORLD_SIZE/RANK/LOCAL_RANK from the environment
        self.dist = setup(tr.device, tr.dist_timeout)
        if tr.device == "cuda" and self.dist.enabled:
            self.device = f"cuda:{self.dist.local_rank}"
        ok = False
        try:
            summary = self._run(resume, overwrite)
            ok = True
            return summary
        finally:
            torch.set_num_threads(threads_before)
            if ok:
                self.dist.barrier()
            self.dist.close()

    def _run(self, resume: bool, overwrite: bool) -> dict[str, Any]:
        r = self.recipe
        if r.output.tensorboard:
            check_tensorboard(self.source)
        # ---- 1. validate the whole run; nothing on disk changes before it passed
        ckpt = self._validate(resume, overwrite)
        # ---- 2. the disk: folder, stale temporary files, the old run moved aside
        self.folder = self.dist.on_main(lambda: rundir.prepare_dir(self.out, resume, overwrite))
        folder = self.folder
        try:
            summary = self._train(ckpt, self.tasks)
        except RunError:
            # a failed fresh run keeps its record (summary.json "failed", the logs); a failed
            # replacement puts the old run back unless it already wrote a checkpoint
            if folder is not None and folder.aside is None:
                folder.commit()
            elif folder is not None:
                folder.rollback()
            raise
        except BaseException:
            if folder is not None:
                folder.rollback()  # before the first checkpoint: the folder as it was
            raise
        if folder is not None:
            folder.commit()
        return summary

    def _validate(self, resume: bool, overwrite: bool) -> dict[str, Any] | None:
        """Everything that can be checked before the disk changes: the output folder, the
        checkpoint to resume, the components built, the data against the model, the state
        restored. Returns the checkpoint (``None`` for a fresh run)."""
        r = self.recipe
        self.folder: rundir.RunFolder | None = None
        # a replacement killed half way (kill -9): one run in the folder again, before the checks
        for msg in self.dist.on_main(lambda: rundir.recover(self.out)) or []:
            warnings.warn(msg, stacklevel=2)
        self.dist.on_main(lambda: rundir.check_dir(self.out, resume, overwrite))
        ckpt = load_checkpoint(self.ckpt_dir / "last.pt") if resume else None
        if ckpt is not None:
            check_training_checkpoint(ckpt, self.ckpt_dir / "last.pt", CHECKPOINT_FORMAT)
            rundir.check_resume_recipe(self.recipe, ckpt["recipe"], self.source)

        if self._components is not None:
            dataset, model, method = self._components
        else:
            dataset, model, method = build.build_components(r, self.device, self.source)
        self.dataset, self.model, self.method = dataset, model, method
        check_train_split(dataset, r, self.source, self.dist.world_size)
        check_leakage(dataset, r.data.kwargs().get("allow_leakage", False), self.source)
        if self.dist.enabled:
            self.dist.broadcast_module_(model)  # same seed → same init; make sure of it
            attach(method, self.dist)
        tasks = list(model.task_names)
        self.tasks = tasks
        n = len(tasks)

        # ---- state
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.seconds = 0.0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self._clock: tuple[float, float, float] | None = None  # (start, base total, base train)
        self._excluded = 0.0  # seconds of evaluation and checkpoints since the clock started
        self.samples = 0
        self.last_eval_step = -1
        self.best: dict[str, Any] | None = None
        self.last_val: dict[str, Any] | None = None
        self.accum = Accumulator(n)
        self.alpha = [RunningStats() for _ in range(n)]
        self.status_counts: dict[str, int] = {}
        self.first_loss: float | None = None
        if ckpt is not None:
            self._restore(ckpt, self.ckpt_dir / "last.pt")
        self.by_rank = self._rank_shard()
        return ckpt

    def _train(self, ckpt: dict[str, Any] | None, tasks: list[str]) -> dict[str, Any]:
        r = self.recipe
        main = self.dist.is_main
        if main:  # on resume: the recipe as continued (train.epochs / train.steps may change)
            atomic_write_text(self.out / "recipe.yaml", rundir.dump_yaml(r.to_dict()))

        self._open_logs(self.step if ckpt is not None else None)
        try:
            self._loop()
        except RunError as exc:
            self._fail(str(exc))
            raise
        finally:
            self.steps_log.close()
            self.metrics_log.close()
            if self.tb is not None:
                self.tb.close()
        summary = rundir.summary(self, "ok")
        if not main:
            return summary
        atomic_write_json(self.out / "summary.json", summary)
        if r.output.plots:
            from mtopt.train.plots import plot_run

            plot_run(self.out, tasks)
        return summary

    def _fail(self, message: str) -> None:
        self._tick()
        self.steps_log.flush()
        self.metrics_log.flush()
        if not self.dist.is_main:
            return
        summary = rundir.summary(self, "failed")
        summary["error"] = message
        atomic_write_json(self.out / "summary.json", summary)

    def _note(self, msg: str) -> None:
        """Warn (rank 0) and keep ``msg`` for the summary's ``warnings``."""
        if not self.dist.is_main:
            return
        warnings.warn(msg, stacklevel=3)
        if msg not in self.warnings:
            self.warnings.append(msg)

    def _tick(self) -> None:
        """Bring ``seconds`` and ``train_seconds`` up to now (no-op before the loop starts)."""
        if self._clock is None:
            return
        start, base_total, base_train = self._clock
        elapsed = time.perf_counter() - start
        self.seconds = base_total + elapsed
        self.train_seconds = base_train + elapsed - self._excluded

    def _loop(self) -> None:
        from tqdm.auto import tqdm

        r = self.recipe
        tr = r.train
        dist = self.dist
        bs = r.optimizer.batch_size
        by_rank = self.by_rank
        rows = self.dataset.num_rows("train")
        per_epoch = math.ceil(rows / bs) if rows else None
        if tr.max_batches_per_epoch is not None:
            per_epoch = min(per_epoch or tr.max_batches_per_epoch, tr.max_batches_per_epoch)
        closure_needed = self.method.needs_closure

        def done() -> bool:
            if tr.steps is not None:
                return self.step >= tr.steps
            return self.epoch >= (tr.epochs or 1)

        # seconds = train_seconds + what _evaluate / _checkpoint spend (self._excluded)
        self._clock = (time.perf_counter(), self.seconds, self.train_seconds)
        self._excluded = 0.0
        while not done():
            total_epochs = tr.epochs if tr.epochs is not None else None
            desc = f"epoch {self.epoch + 1}" + (f"/{total_epochs}" if total_epochs else "")
            bar = tqdm(
                total=per_epoch,
                initial=self.batch_in_epoch,
                desc=desc,
                disable=not r.output.progress or not self.dist.is_main,
                leave=False,
                dynamic_ncols=True,
            )
            if by_rank:  # this process's own share, in local batches
                it = self.dataset.batches(
                    "train",
                    bs // dist.world_size,
                    shuffle=True,
                    seed=tr.seed,
                    epoch=self.epoch,
                    rank=dist.rank,
                    world_size=dist.world_size,
                )
            else:
                it = self.dataset.batches("train", bs, shuffle=True, seed=tr.seed, epoch=self.epoch)
            if self.batch_in_epoch:
                it = itertools.islice(it, self.batch_in_epoch, None)
            epoch_finished = True
            from_start, steps_before = self.batch_in_epoch == 0, self.step
            while (
                tr.max_batches_per_epoch is None or self.batch_in_epoch < tr.max_batches_per_epoch
            ):
                batch = next(it, None)
                dist.step = self.step + 1
                if by_rank:
                    local, rows = self._agree(batch)
                    if local is None:
                        break
                else:
                    if batch is None:
                        break
                    rows = int(batch["labels"].shape[0])
                    local = shard_batch(batch, dist.rank, dist.world_size)
                    if local is None:  # fewer rows than processes: dropped on every rank
                        self.batch_in_epoch += 1
                        continue
                b = to_device(local, self.device)
                n_local = int(local["labels"].shape[0])
                dist.reduced = False

                def losses_of(b: dict[str, Any] = b, n_local: int = n_local, rows: int = rows):
                    return dist.globalize_losses(self.model.losses(b), n_local, rows)

                losses = losses_of()
                self._check_losses(losses)
                if closure_needed:
                    info = self.method.step(losses, closure=losses_of)
                else:
                    info = self.method.step(losses)
                self.step += 1
                self.batch_in_epoch += 1
                self.samples += rows
                self._check_divergence(info.loss)
                self._log_step(info)
                bar.update(1)
                if self.step % 20 == 0:
                    bar.set_postfix(loss=f"{info.loss:.4f}", refresh=False)
                if tr.eval_every is not None and self.step % tr.eval_every == 0:
                    self._evaluate()
                    self._checkpoint()
                elif tr.checkpoint_every is not None and self.step % tr.checkpoint_every == 0:
                    self._checkpoint()
                if tr.steps is not None and self.step >= tr.steps:
                    epoch_finished = False
                    break
            bar.close()
            if from_start and self.step == steps_before:  # never loop on an empty split
                raise RunError(
                    f"epoch {self.epoch + 1}: the training split gave no batch; check the data "
                    f"({self.source}: data)"
                )
            if epoch_finished:
                self.method.end_epoch()  # e.g. DWA's per-epoch loss averages (window: null)
                self.epoch += 1
                self.batch_in_epoch = 0
                if tr.eval_every is None and self.last_eval_step != self.step:
                    self._evaluate()
                self._checkpoint()
        if self.last_eval_step != self.step:
            self._evaluate()
        self._checkpoint()
        self._tick()


def train(
    recipe: Recipe,
    out_dir: str | Path | None = None,
    *,
    source: str = "recipe",
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train ``recipe`` into ``out_dir`` (see :class:`Trainer`); return the summary dict."""
    return Trainer(recipe, out_dir, source=source).run(resume=resume, overwrite=overwrite)
