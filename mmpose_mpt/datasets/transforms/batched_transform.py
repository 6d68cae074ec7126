"""BatchedTransform: a transform that runs on a whole batch of samples at once, with the same results.

The MoCap transforms are a few numpy calls on 17 points per sample; per sample that is ~0.2 ms of
Python/numpy call overhead, a quarter of the data engine's time. When a dataset is asked for a batch
(PyTorch's ``DataLoader`` calls ``dataset.__getitems__(indices)`` when it exists, see
:meth:`MoCapHeatmapDataset.__getitems__`), :func:`run_batched` runs each transform once on the list
of samples, vectorised over them.

By default the per-sample call is the batched code on a batch of one. RandomVirtualCamera and
MaskedHeatmapModeling override it with scalar code (a batch of one costs 2-4x the numpy calls on the
per-item path, which wrapped datasets and the benchmark's reference use); it does the same
element-wise arithmetic, and the equality is tested. Random numbers are drawn per sample by :meth:`BatchedTransform.draw`, for every sample
and every transform *before* any is computed, in the order the per-sample pipeline draws them
(sample 1: transform 1, transform 2, ...; sample 2: ...): a batch is exactly the list of items the
per-item path gives under the same random state (tested).
"""
from typing import Any, List, Optional, Sequence

from mmcv.transforms import BaseTransform


class NotBatchable(Exception):
    """Raised by :meth:`BatchedTransform.transform_batch` when this batch cannot give the per-item
    results (e.g. a draw made before an earlier transform changed the data's shape): the dataset then
    rewinds the random state and runs the items one by one."""


class BatchedTransform(BaseTransform):
    """Base class: implement :meth:`transform_batch` (and :meth:`draw` if random)."""

    def draw(self, results: dict) -> Any:
        """This sample's random numbers (called before any transform of the batch is computed, so
        ``results`` holds only what the dataset put there). Default: none."""
        return None

    def transform_batch(self, batch: List[dict], draws: List[Any]) -> List[Optional[dict]]:
        """Transform every sample of ``batch`` (a list of results dicts; may be modified in place)
        with its ``draws[i]``; return the list of results (None drops a sample, as in
        :meth:`transform`)."""
        raise NotImplementedError

    def transform(self, results: dict) -> Optional[dict]:
        return self.transform_batch([results], [self.draw(results)])[0]


def _owner(cls: type, name: str) -> type:
    return next(c for c in cls.__mro__ if name in c.__dict__)


def is_batched_pipeline(transforms: Sequence) -> bool:
    """Whether every transform of a pipeline (mmengine ``Compose.transforms``) is batchable: a
    :class:`BatchedTransform` whose ``transform_batch`` is not older than its ``transform`` and
    ``__call__`` (a subclass that overrides only ``transform`` must run item by item)."""
    def batchable(t) -> bool:
        if not isinstance(t, BatchedTransform):
            return False
        cls = type(t)
        owner = _owner(cls, 'transform_batch')
        return all(issubclass(owner, _owner(cls, name)) for name in ('transform', '__call__'))

    return len(transforms) > 0 and all(batchable(t) for t in transforms)


def run_batched(transforms: Sequence[BatchedTransform], batch: List[dict]) -> List[Optional[dict]]:
    """Run a pipeline of :class:`BatchedTransform` over a batch of results dicts.

    Returns the transformed samples, None where a transform dropped one. Equal to
    ``[pipeline(r) for r in batch]`` under the same random state when no sample is dropped (the
    per-item path stops drawing for a dropped sample; the caller then rewinds the random state and
    runs item by item). Raises :class:`NotBatchable` from a transform that cannot do this batch.
    """
    draws = [[t.draw(r) for t in transforms] for r in batch]   # per-sample order of the draws
    out: List[Optional[dict]] = list(batch)
    for k, t in enumerate(transforms):
        keep = [i for i, r in enumerate(out) if r is not None]
        if not keep:
            break
        done = t.transform_batch([out[i] for i in keep], [draws[i][k] for i in keep])
        for i, r in zip(keep, done):
            out[i] = r
    return out
