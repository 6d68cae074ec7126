"""ResumableMultiSourceSampler: mmpose's ``MultiSourceSampler`` whose epoch ``e`` is a function of
(seed, e), so that ``--resume`` continues the same sample order.

mmpose's sampler (``mmpose/datasets/samplers.py``) fixes every batch's composition by the per-dataset
``source_ratio`` (``int(batch_size * r / sum(ratios))`` samples of each source, the first taking the
rest) and draws each source's samples from an endless stream of seeded permutations. The streams are
generators created once, in ``__init__``; every epoch continues them, and ``set_epoch`` does nothing.
A resumed run (a new process) therefore restarts every stream at its beginning: after a resume at
epoch ``e`` it replays epoch 0's samples instead of epoch ``e``'s, and the loss curve departs from the
uninterrupted run's. This subclass positions the streams from the epoch instead (``set_epoch``, called
by mmengine's ``DistSamplerSeedHook`` before every epoch, or the count of epochs iterated so far):
epoch ``e`` yields exactly what mmpose's sampler yields in its ``e``-th epoch of an uninterrupted run
(same seed, same batches, tested), whether or not the process was restarted in between.

Two more fixes of the same class: a source whose ratio gives 0 samples per batch (``int(B r / sum)``
rounds to 0 for a small ratio) made mmpose's ``__iter__`` loop forever; here it is an error naming
the ratio. ``__len__`` is what ``__iter__`` yields (whole batches; mmpose returns the dataset-based
count, one batch short of it without ``round_up``, which shifted mmengine's ``max_iters``).
"""
import itertools
from typing import Iterator, List, Optional, Sized, Union

import torch
from mmpose.datasets.samplers import MultiSourceSampler
from mmpose.registry import DATA_SAMPLERS

__all__ = ['ResumableMultiSourceSampler']


@DATA_SAMPLERS.register_module()
class ResumableMultiSourceSampler(MultiSourceSampler):
    """mmpose's ``MultiSourceSampler`` (same arguments, same batches) that resumes mid-training.

    Args:
        dataset: an mmpose ``CombinedDataset``.
        batch_size: samples per batch (per process); must equal the dataloader's ``batch_size``, since
            each consecutive ``batch_size`` indices are one batch of the ratios.
        source_ratio: relative share of each sub-dataset in every batch (any positive numbers, e.g.
            sample counts); each source must get at least one sample per batch.
        shuffle: draw each source's samples from seeded permutations (else in order).
        round_up: a last batch for the remainder of ``len(dataset) / world_size``.
        seed: permutation seed; None = a random seed shared by the processes (mmengine's runner passes
            its own seed, saved in checkpoints).
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 source_ratio: List[Union[int, float]],
                 shuffle: bool = True,
                 round_up: bool = True,
                 seed: Optional[int] = None) -> None:
        source_ratio = list(source_ratio)   # a config gives a tuple / ConfigList; mmpose asserts list
        if any(not (float(r) > 0) for r in source_ratio):
            raise ValueError(f'ResumableMultiSourceSampler: every source_ratio must be > 0, got '
                             f'{source_ratio}')
        super().__init__(dataset, batch_size, source_ratio, shuffle=shuffle, round_up=round_up,
                         seed=seed)
        empty = [i for i, n in enumerate(self.num_per_source) if n < 1]
        if empty:
            raise ValueError(
                f'ResumableMultiSourceSampler: source(s) {empty} get 0 of the {batch_size} samples per '
                f'batch (source_ratio={source_ratio} -> {self.num_per_source} per batch); raise their '
                'ratio to at least sum(source_ratio) / batch_size or use a larger batch')
        self.num_iters = self.num_samples // self.batch_size
        if self.round_up and self.num_samples > self.num_iters * self.batch_size:
            self.num_iters += 1
        self.epoch = 0
        self.source2inds = {}   # built per epoch by __iter__ (mmpose builds endless ones here)

    def set_epoch(self, epoch: int) -> None:
        """Start the next ``__iter__`` at epoch ``epoch`` (mmengine calls this before every epoch)."""
        self.epoch = int(epoch)

    def _stream(self, sample_size: int, start: int) -> Iterator[int]:
        """mmpose's endless index stream of one source (permutations of ``sample_size`` from a
        generator seeded with ``seed``), from global position ``start`` on. Whole permutations before
        ``start`` are drawn and dropped (the generator must advance the same way), never listed."""
        g = torch.Generator()
        g.manual_seed(self.seed)
        skip, offset = divmod(start, sample_size)
        if self.shuffle:
            for _ in range(skip):
                torch.randperm(sample_size, generator=g)
        while True:
            perm = (torch.randperm(sample_size, generator=g) if self.shuffle
                    else torch.arange(sample_size)).tolist()
            yield from perm[offset:]
            offset = 0

    def __iter__(self) -> Iterator[int]:
        # this rank's k-th draw of a source is its stream's element rank + k * world_size; every epoch
        # takes num_iters * num_per_source[s] draws of source s
        self.source2inds = {}
        for source, ds in enumerate(self.dataset.datasets):
            taken = self.epoch * self.num_iters * self.num_per_source[source]
            start = self.rank + taken * self.world_size
            self.source2inds[source] = itertools.islice(self._stream(len(ds), start), 0, None,
                                                        self.world_size)
        self.epoch += 1   # no set_epoch before the next one: continue, as mmpose's sampler does
        return super().__iter__()

    def __len__(self) -> int:
        return self.num_iters * self.batch_size
