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

Reproducibility: everything is seeded from ``train.seed``; ``--resume`` restores the RNG states
and skips the batches of the current epoch already consumed, so an interrupted and resumed run
ends bitwise identical to an uninterrupted one on CPU (datasets yield the same batches for the
same ``(split, batch_size, shuffle, seed, epoch)``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from mtopt.config import Recipe
from mtopt.distributed import DistContext, attach, setup, shard_batch
from mtopt.errors import InputError, RunError
from mtopt.io import atomic_write_json, atomic_write_text
from mtopt.train.checkpoint import (
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from mtopt.train.logs import CsvLog, TensorBoardLog
from mtopt.train.metrics import Accumulator, EvalResult, RunningStats, evaluate, to_device

CHECKPOINT_FORMAT = "mtopt-checkpoint"
CHECKPOINT_VERSION = 1
#: recipe fields that may differ between a checkpoint and the recipe that resumes it
RESUMABLE_CHANGES = ("train.epochs", "train.steps", "train.threads", "train.dist_timeout")
#: files a run owns in its output folder (removed by ``overwrite=True``)
RUN_FILES = ("steps.csv", "metrics.csv", "summary.json", "recipe.yaml")
RUN_DIRS = ("checkpoints", "plots", "tensorboard")


_SECTIONS = ("data.", "model.", "method.", "optimizer.", "train.", "output.")


def build_components(
    recipe: Recipe, device: str = "cpu", source: str = "recipe"
) -> tuple[Any, Any, Any]:
    """Dataset, model (on ``device``) and method of a recipe, seeded from ``train.seed``.

    An :class:`InputError` of a component that names a recipe field (``data.rows: ...``) is
    prefixed with ``source`` so that the message names the file too.
    """
    from mtopt.models.base import check_split
    from mtopt.registry import registry

    seed = recipe.train.seed
    try:
        seed_everything(seed)
        dataset = registry.get("dataset", recipe.data.name)(**recipe.data.kwargs())
        seed_everything(seed)  # model init independent of how much RNG the dataset used
        model = registry.get("backbone", recipe.model.name)(dataset.schema, **recipe.model.kwargs())
        model.to(device)
        try:
            check_split(model)
        except AssertionError as exc:
            raise RunError(
                f"backbone {recipe.model.name!r}: bad shared/task split: {exc}"
            ) from None
        method = registry.get("method", recipe.method.name)(
            model,
            recipe.optimizer.to_optimizer_config(),
            **recipe.method.kwargs(),
            **embedding_kwargs(recipe, model, source),
        )
    except InputError as exc:
        msg = str(exc)
        if msg.startswith(_SECTIONS):
            raise type(exc)(f"{source}: {msg}") from None
        # "fixed_alpha: ..." from a component's own check: name the recipe field it came from
        key = msg.split(":", 1)[0].strip()
        owners = [
            s
            for s, kw in (
                ("method", recipe.method.kwargs()),
                ("model", recipe.model.kwargs()),
                ("data", recipe.data.kwargs()),
            )
            if key in kw
        ]
        if len(owners) == 1:
            raise type(exc)(f"{source}: {owners[0]}.{msg}") from None
        raise
    except TypeError as exc:
        # a factory taking **kwargs that forwards them to a fixed signature
        m = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if m is None:
            raise
        key = m.group(1)
        section = next(
            (
                s
                for s, kw in (
                    ("method", recipe.method.kwargs()),
                    ("model", recipe.model.kwargs()),
                    ("data", recipe.data.kwargs()),
                )
                if key in kw
            ),
            None,
        )
        if section is None and key in ("row_wise", "plain"):
            raise InputError(
                f"{source}: method.embeddings: {recipe.method.embeddings!r} is only supported "
                f"by the pub methods, not {recipe.method.name!r}; remove it (or use balanced)"
            ) from None
        if section is None:
            raise
        name = getattr(recipe, section).name
        raise InputError(
            f"{source}: {section}.{key}: {section} {name!r} does not take {key!r} "
            "(see docs/recipes.md and the component's documentation)"
        ) from None
    return dataset, model, method


def embedding_kwargs(recipe: Recipe, model: Any, source: str = "recipe") -> dict[str, Any]:
    """The method keyword arguments of ``method.embeddings`` (PUB's ``row_wise`` / ``plain``).

    The tables are the weights of the backbone's ``nn.Embedding`` / ``nn.EmbeddingBag`` modules
    that are shared parameters; ``row-wise`` also switches those modules to sparse gradients.
    """
    mode = recipe.method.embeddings or "balanced"
    if mode == "balanced":
        return {}
    shared = {id(p) for p in model.shared_parameters()}
    mods = [
        m
        for m in model.modules()
        if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and id(m.weight) in shared
    ]
    if not mods:
        raise InputError(
            f"{source}: method.embeddings: backbone {recipe.model.name!r} has no shared "
            "embedding table; remove the field"
        )
    if mode == "row-wise":
        for m in mods:
            m.sparse = True
        return {"row_wise": [m.weight for m in mods]}
    return {"plain": [m.weight for m in mods]}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


class _NullLog:
    """Stands in for :class:`CsvLog` on ranks other than 0 (they write no files)."""

    def open(self, resume_step: int | None = None) -> None:
        pass

    def write(self, row: dict[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Trainer:
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

    def _prepare_dir(self, resume: bool, overwrite: bool) -> None:
        last = self.ckpt_dir / "last.pt"
        if resume:
            if not last.is_file():
                raise InputError(
                    f"{last}: no checkpoint to resume from; run without --resume to start"
                )
            return
        if last.exists() or (self.out / "summary.json").exists():
            if not overwrite:
                raise InputError(
                    f"{self.out}: already holds a run; pass --resume to continue it, "
                    "--overwrite to replace it, or --out to use another folder"
                )
            for name in RUN_FILES:
                (self.out / name).unlink(missing_ok=True)
            for name in RUN_DIRS:
                if (self.out / name).is_dir():
                    shutil.rmtree(self.out / name)
        self.out.mkdir(parents=True, exist_ok=True)

    def _check_resume_recipe(self, saved: dict[str, Any]) -> None:
        try:  # fields added to the schema since the checkpoint was written take their defaults
            saved = Recipe.model_validate(saved).to_dict()
        except ValueError:
            pass
        now = _flat({k: v for k, v in self.recipe.to_dict().items() if k != "output"})
        then = _flat({k: v for k, v in saved.items() if k != "output"})
        diff = sorted(
            k
            for k in set(now) | set(then)
            if k not in RESUMABLE_CHANGES and now.get(k) != then.get(k)
        )
        if diff:
            k = diff[0]
            raise InputError(
                f"{self.source}: {k}: differs from the checkpoint's recipe "
                f"({then.get(k)!r} there, {now.get(k)!r} here; {len(diff)} field(s) differ: "
                f"{', '.join(diff[:5])}); only {', '.join(RESUMABLE_CHANGES)} may change on "
                "--resume"
            )

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
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise InputError(
                    f"{self.source}: output.tensorboard: true needs the 'tensorboard' package "
                    "(pip install tensorboard), or set output.tensorboard: false"
                ) from None
        main = self.dist.is_main
        self.dist.on_main(lambda: self._prepare_dir(resume, overwrite))
        ckpt = load_checkpoint(self.ckpt_dir / "last.pt") if resume else None
        if ckpt is not None:
            if ckpt.get("format") != CHECKPOINT_FORMAT:
                raise InputError(f"{self.ckpt_dir / 'last.pt'}: not an mtopt training checkpoint")
            self._check_resume_recipe(ckpt["recipe"])

        if self._components is not None:
            dataset, model, method = self._components
        else:
            dataset, model, method = build_components(r, self.device, self.source)
        self.dataset, self.model, self.method = dataset, model, method
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
        if ckpt is not None:
            self._restore(ckpt)
        self.by_rank = self._rank_shard()
        if ckpt is None and main:
            atomic_write_text(self.out / "recipe.yaml", _dump_yaml(r.to_dict()))

        step_cols = ["step", "epoch", "loss"]
        step_cols += [f"loss_{t}" for t in tasks] + [f"weight_{t}" for t in tasks]
        step_cols += ["solver_status", "solve_seconds", "extra"]
        metric_cols = ["step", "epoch", "train_loss"] + [f"train_loss_{t}" for t in tasks]
        metric_cols += [f"val_auc_{t}" for t in tasks] + ["val_auc_avg"]
        metric_cols += [f"val_logloss_{t}" for t in tasks] + ["best"]
        metric_cols += [f"test_auc_{t}" for t in tasks] + ["test_auc_avg", "seconds"]
        resume_step = self.step if ckpt is not None else None
        self.steps_log: Any = CsvLog(self.out / "steps.csv", step_cols) if main else _NullLog()
        self.metrics_log: Any = (
            CsvLog(self.out / "metrics.csv", metric_cols) if main else _NullLog()
        )
        self.steps_log.open(resume_step)
        self.metrics_log.open(resume_step)
        self.tb = (
            TensorBoardLog(self.out / "tensorboard", purge_step=resume_step)
            if r.output.tensorboard and main
            else None
        )
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
        summary = self._summary("ok")
        if not main:
            return summary
        atomic_write_json(self.out / "summary.json", summary)
        if r.output.plots:
            from mtopt.train.plots import plot_run

            plot_run(self.out, tasks)
        return summary

    # ----------------------------------------------------------------------------------------
    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.method.load_state_dict(ckpt["method"])
        pos = ckpt["position"]
        self.step, self.epoch, self.batch_in_epoch = pos["step"], pos["epoch"], pos["batch"]
        t = ckpt["trainer"]
        self.seconds = float(t["seconds"])
        # checkpoints written before the split: all of it counted as training
        self.train_seconds = float(t.get("train_seconds", self.seconds))
        self.eval_seconds = float(t.get("eval_seconds", 0.0))
        self.samples = int(t["samples"])
        self.last_eval_step = int(t["last_eval_step"])
        self.best = t["best"]
        self.last_val = t["last_val"]
        self.accum.load(t["accum"])
        self.alpha = [RunningStats.from_state(s) for s in t["alpha"]]
        self.status_counts = dict(t["status_counts"])
        self.warnings = list(t.get("warnings", []))
        set_rng_state(ckpt["rng"])

    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "recipe": self.recipe.to_dict(),
            "tasks": list(self.tasks),
            "model": self.model.state_dict(),
            "method": self.method.state_dict(),
            "rng": get_rng_state(),
            "position": {"step": self.step, "epoch": self.epoch, "batch": self.batch_in_epoch},
            "trainer": {
                "seconds": self.seconds,
                "train_seconds": self.train_seconds,
                "eval_seconds": self.eval_seconds,
                "samples": self.samples,
                "last_eval_step": self.last_eval_step,
                "best": self.best,
                "last_val": self.last_val,
                "accum": self.accum.state(),
                "alpha": [s.state() for s in self.alpha],
                "status_counts": dict(self.status_counts),
                "warnings": list(self.warnings),
            },
        }

    def _checkpoint(self) -> None:
        t0 = time.perf_counter()
        self._tick()
        try:
            self._write_checkpoint()
        finally:
            self._excluded += time.perf_counter() - t0

    def _write_checkpoint(self) -> None:
        for name, p in self.model.named_parameters():
            if not bool(torch.isfinite(p.detach()).all()):
                raise RunError(
                    f"step {self.step}: parameter {name!r} became non-finite; training stopped "
                    f"and the last good checkpoint {self.ckpt_dir / 'last.pt'} was kept "
                    "(lower optimizer.lr or check the method)"
                )
        self.dist.check_identical(self.model)
        self.steps_log.flush()
        self.metrics_log.flush()
        if self.dist.is_main:  # parameters are identical on every rank
            save_checkpoint(self.ckpt_dir / "last.pt", self._state())

    def _fail(self, message: str) -> None:
        self._tick()
        self.steps_log.flush()
        self.metrics_log.flush()
        if not self.dist.is_main:
            return
        summary = self._summary("failed")
        summary["error"] = message
        atomic_write_json(self.out / "summary.json", summary)

    # ----------------------------------------------------------------------------------------
    def _rank_shard(self) -> bool:
        """Whether each process reads its own local batches (``data.shard: rank``)."""
        r, dist = self.recipe, self.dist
        if r.data.shard != "rank" or not dist.enabled:
            return False  # one process: the global stream is the process's stream
        if not getattr(self.dataset, "supports_rank_shard", False):
            self._note(
                f"data.shard: rank: dataset {r.data.name!r} has no per-process reader; every "
                "process reads the global batches and keeps its slice (as with shard: global)"
            )
            return False
        bs, w = r.optimizer.batch_size, dist.world_size
        if bs % w:
            raise InputError(
                f"{self.source}: optimizer.batch_size: {bs} is not divisible by the {w} "
                f"processes; data.shard: rank reads local batches of batch_size / {w} rows "
                f"(use a multiple of {w}, or data.shard: global)"
            )
        return True

    def _note(self, msg: str) -> None:
        """Warn (rank 0) and keep ``msg`` for the summary's ``warnings``."""
        if not self.dist.is_main:
            return
        warnings.warn(msg, stacklevel=3)
        if msg not in self.warnings:
            self.warnings.append(msg)

    def _agree(self, batch: dict[str, Any] | None) -> tuple[dict[str, Any] | None, int]:
        """``data.shard: rank``: (this process's batch, the global batch's rows), or
        ``(None, 0)`` when any process's stream has ended — one all-reduce of (local rows,
        ended) per step, so every process stops at the same step."""
        n = 0 if batch is None else int(batch["labels"].shape[0])
        t = torch.tensor([n, int(n == 0)], dtype=torch.int64, device=self.device)
        self.dist.all_reduce_sum_(t)
        total, ended = (int(v) for v in t.tolist())
        if ended:
            if ended < self.dist.world_size:
                self._note(
                    f"data.shard: rank: dataset {self.recipe.data.name!r} gave the processes "
                    f"different numbers of batches in epoch {self.epoch + 1}; every process "
                    "stopped with the shortest stream (the others' remaining rows were skipped)"
                )
            return None, 0
        return batch, total

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
        closure_needed = bool(getattr(self.method, "needs_closure", False))

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
                if not math.isfinite(info.loss):
                    raise RunError(
                        f"step {self.step} (epoch {self.epoch + 1}): the method's joint loss is "
                        f"{info.loss}; training stopped and the last good checkpoint "
                        f"{self.ckpt_dir / 'last.pt'} was kept"
                    )
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
            if epoch_finished:
                self.epoch += 1
                self.batch_in_epoch = 0
                if tr.eval_every is None and self.last_eval_step != self.step:
                    self._evaluate()
                self._checkpoint()
        if self.last_eval_step != self.step:
            self._evaluate()
        self._checkpoint()
        self._tick()

    def _check_losses(self, losses: list[torch.Tensor]) -> None:
        vals = torch.stack([x.detach().float() for x in losses])
        if bool(torch.isfinite(vals).all()):
            return
        bad = [
            f"{t}={float(v)}" for t, v in zip(self.tasks, vals.cpu()) if not math.isfinite(float(v))
        ]
        raise RunError(
            f"step {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch_in_epoch + 1}): "
            f"non-finite loss ({', '.join(bad)}); training stopped before this step, the last "
            f"good checkpoint {self.ckpt_dir / 'last.pt'} was kept (lower optimizer.lr, or check "
            "the data and the method)"
        )

    def _log_step(self, info: Any) -> None:
        row: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch + 1,
            "loss": info.loss,
            "solver_status": info.solver_status,
            "solve_seconds": info.solve_seconds,
        }
        for t, x in zip(self.tasks, info.task_losses):
            row[f"loss_{t}"] = x
        self.accum.add(info.loss, list(info.task_losses))
        has_w = info.weights is not None
        if has_w:
            for i, (t, w) in enumerate(zip(self.tasks, info.weights)):
                row[f"weight_{t}"] = float(w)
                if math.isfinite(float(w)):
                    self.alpha[i].add(float(w))
        if info.solver_status is not None:
            self.status_counts[info.solver_status] = (
                self.status_counts.get(info.solver_status, 0) + 1
            )
        extra = {
            k: float(v)
            for k, v in (info.extra or {}).items()
            if isinstance(v, (int, float)) and math.isfinite(float(v))
        }
        # method-specific numbers (PUB diagnostics: cosines, Diff, residual; DRGrad's mu; …)
        row["extra"] = json.dumps(extra, sort_keys=True, separators=(",", ":")) if extra else None
        self.steps_log.write(row)
        if self.tb is not None:
            vals = {"train/loss": info.loss}
            vals.update({f"train/loss_{t}": x for t, x in zip(self.tasks, info.task_losses)})
            if has_w:
                vals.update({f"weight/{t}": float(w) for t, w in zip(self.tasks, info.weights)})
            self.tb.scalars(self.step, vals)

    def _eval_split(self, split: str) -> EvalResult:
        tr = self.recipe.train
        bs = tr.eval_batch_size or self.recipe.optimizer.batch_size
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = evaluate(self.model, self.dataset, split, bs, self.device)
        for w in caught:
            msg = str(w.message)
            if msg not in self.warnings:
                self.warnings.append(msg)
                warnings.warn(msg, w.category, stacklevel=2)
        return res

    def _evaluate(self) -> None:
        t0 = time.perf_counter()
        self._tick()
        try:
            self._evaluate_main()
        finally:
            dt = time.perf_counter() - t0
            self._excluded += dt
            self.eval_seconds += dt

    def _evaluate_main(self) -> None:
        if not self.dist.is_main:  # rank 0 evaluates the full splits (parameters are identical)
            self.last_eval_step = self.step
            return
        val = self._eval_split("val")
        self.last_eval_step = self.step
        cur = val.auc_avg
        best_val = None if self.best is None else self.best["val"]["auc_avg"]
        improved = self.best is None or (cur is not None and (best_val is None or cur > best_val))
        test: EvalResult | None = None
        if improved:
            test = self._eval_split("test")
            self.best = {
                "step": self.step,
                "epoch": self._eval_epoch(),
                "val": val.to_dict(),
                "test": test.to_dict(),
            }
            save_checkpoint(
                self.ckpt_dir / "best.pt",
                {
                    "format": "mtopt-best-model",
                    "recipe": self.recipe.to_dict(),
                    "tasks": list(self.tasks),
                    "model": self.model.state_dict(),
                    "step": self.step,
                    "epoch": self.best["epoch"],
                    "val": val.to_dict(),
                    "test": test.to_dict(),
                },
            )
        self.last_val = val.to_dict()
        train_loss, task_losses = self.accum.means()
        self.accum.reset()
        row: dict[str, Any] = {
            "step": self.step,
            "epoch": self._eval_epoch(),
            "train_loss": train_loss,
            "val_auc_avg": val.auc_avg,
            "best": int(improved),
            "seconds": round(self.seconds, 3),
        }
        for t, x in zip(self.tasks, task_losses):
            row[f"train_loss_{t}"] = x
        for t in self.tasks:
            row[f"val_auc_{t}"] = val.auc[t]
            row[f"val_logloss_{t}"] = val.logloss[t]
        if test is not None:
            for t in self.tasks:
                row[f"test_auc_{t}"] = test.auc[t]
            row["test_auc_avg"] = test.auc_avg
        self.metrics_log.write(row)
        if self.tb is not None:
            vals: dict[str, float | None] = {"val/auc_avg": val.auc_avg}
            vals.update({f"val/auc_{t}": v for t, v in val.auc.items()})
            if test is not None:
                vals["test/auc_avg"] = test.auc_avg
            self.tb.scalars(self.step, vals)

    def _eval_epoch(self) -> int:
        """1-based epoch of an evaluation at the current position."""
        return self.epoch if self.batch_in_epoch == 0 and self.step > 0 else self.epoch + 1

    # ----------------------------------------------------------------------------------------
    def _summary(self, status: str) -> dict[str, Any]:
        r = self.recipe
        best = self.best or {}
        empty = {"auc": {t: None for t in self.tasks}, "auc_avg": None}
        has_alpha = any(s.count for s in self.alpha)
        return {
            "status": status,
            "recipe": self.source,
            "data": r.data.name,
            "model": r.model.name,
            "method": r.method.name,
            "seed": r.train.seed,
            "tasks": list(self.tasks),
            "test": best.get("test", empty),
            "val": best.get("val", empty),
            "best_epoch": best.get("epoch"),
            "best_step": best.get("step"),
            "last_val": self.last_val,
            "steps": self.step,
            "epochs_completed": self.epoch,
            "samples": self.samples,
            "seconds": round(self.seconds, 3),
            "train_seconds": round(self.train_seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "samples_per_second": _finite(
                self.samples / self.train_seconds if self.train_seconds > 0 else None
            ),
            "processes": self.dist.world_size,
            "alpha": (
                {t: s.summary() for t, s in zip(self.tasks, self.alpha)} if has_alpha else None
            ),
            "solver_status": dict(sorted(self.status_counts.items())),
            "warnings": list(self.warnings),
            "checkpoint": str(self.ckpt_dir / "best.pt") if self.best else None,
        }


def _dump_yaml(d: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


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
