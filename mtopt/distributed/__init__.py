"""Multi-process data-parallel training on ``torch.distributed`` (see docs/scaling.md).

Launch with ``torchrun --nproc-per-node N -m mtopt train recipe.yaml``: torchrun sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them and
initialises a process group (gloo on CPU, nccl on CUDA) with a timeout, so that a crashed rank
makes the others fail with a clear :class:`~mtopt.errors.RunError` instead of hanging.

Scheme (the same for every method, no ``DistributedDataParallel`` wrapper):

* **data**: every rank iterates the *same* seeded global batches and keeps its contiguous slice
  of each (:func:`shard_batch`); a final global batch with fewer rows than processes is dropped
  (on every rank). N processes at ``batch_size: B`` train on exactly the batches one process at
  ``batch_size: B`` trains on.
* **losses**: each rank's task losses are rescaled by ``b_r·W/B`` (so that the rank mean is the
  global-batch mean even for uneven slices) and their *values* replaced by the all-reduced global
  means (:meth:`DistContext.globalize_losses`, one all-reduce of n numbers), keeping the local
  graph. Methods whose state depends on loss values (DWA, FAMO, BanditMTL, IMTL-L, GradNorm's
  loss ratios) therefore see the same numbers on every rank.
* **gradients**: averaged over ranks before they are used:

  - update-level methods (PUB, AdaTask): the optimizer's ``grad_reducer`` hook averages the
    stacked per-task gradient buffer ``[n, d]`` (one all-reduce) and the task-parameter gradients
    before the per-task updates, G and α are formed — α is solved on every rank from the same G;
  - gradient-level methods: their ``grad_reducer`` hook averages the per-task Jacobian ``J``
    (and the task-parameter rows ``T``) right after the per-task backward passes, before the
    aggregator sees them;
  - everything (loss-level methods, and the steps of gradient-level methods that do not go
    through ``J``): a step pre-hook on every torch optimizer of the method averages ``.grad``
    (one flat all-reduce), unless the method's gradients were already reduced this step.

So parameters stay bitwise identical across ranks, and equal (to rounding) to one process trained
on the same global batches. The initial parameters are broadcast from rank 0.
"""

from mtopt.distributed.context import DEFAULT_TIMEOUT, DistContext
from mtopt.distributed.launch import env_world_size, setup
from mtopt.distributed.reducers import attach
from mtopt.distributed.shard import shard_batch

__all__ = ["DEFAULT_TIMEOUT", "DistContext", "attach", "env_world_size", "setup", "shard_batch"]
