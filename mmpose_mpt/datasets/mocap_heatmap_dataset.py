"""MoCap meshes x virtual views: the pre-training dataset of MPT (Sec. 3.1, "8 million heatmap-mesh
pairs" = 2 M AMASS meshes x 4 virtual cameras).

Reads the compact index written by ``tools/prepare_amass.py`` (see
:mod:`mmpose_mpt.datasets.amass_index`). One item per (mesh, view): ``idx = mesh_slot * num_views +
view``. No per-item Python dicts are built up front: ``__len__`` and :meth:`get_data_info` read the
memory-mapped arrays directly, which are opened lazily in each process (DataLoader worker) and never
pickled.
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset

from mmpose.registry import DATASETS

from .amass_index import MoCapIndex
from .transforms.batched_transform import NotBatchable, is_batched_pipeline, run_batched

COCO_META_FILE = 'configs/_base_/datasets/coco.py'


def _resolve_meta_file(path: str) -> str:
    """A relative mmpose meta config path that does not exist here -> the copy shipped inside the
    installed mmpose package (``mmpose/.mim/configs/...``); avoids mmpose's fallback warning."""
    if osp.isabs(path) or osp.isfile(path):
        return path
    import mmpose
    shipped = osp.join(osp.dirname(mmpose.__file__), '.mim', path)
    return shipped if osp.isfile(shipped) else path


def coco_metainfo() -> dict:
    """mmpose's parsed COCO-17 dataset meta (keypoint names, flip pairs, sigmas, skeleton ...)."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    return parse_pose_metainfo(dict(from_file=_resolve_meta_file(COCO_META_FILE)))


@DATASETS.register_module()
class MoCapHeatmapDataset(BaseDataset):
    """Prepared AMASS meshes, each seen from ``num_views`` virtual cameras.

    Args:
        data_root: the ``OUT_DIR`` of ``tools/prepare_amass.py`` (holds ``<split>/index.json``).
        split: split directory name ('train', 'val', 'test', ...).
        num_views: virtual cameras per mesh (item ``view_index = idx % num_views``).
        pipeline: mmpose transforms (e.g. RandomVirtualCamera, MaskedHeatmapModeling,
            PackMeshInputs).
        test_mode: mmengine's flag (no re-fetch on a None pipeline result).
        max_meshes: use only this many meshes, evenly spaced over the index (deterministic), e.g.
            for a quick validation subset; None = all.
        metainfo: override of the COCO-17 meta (mmpose ``parse_pose_metainfo`` format or
            ``dict(from_file=...)``); None = mmpose's COCO meta.
        lazy_init: mmengine's flag (defer reading ``index.json``).
        max_refetch: mmengine's re-fetch limit.

    Item (``get_data_info(idx)``):
        ``smpl_pose`` (72,) float32 axis-angle radians, ``smpl_betas`` (10,) float32, ``gender`` int
        (0 neutral, 1 male, 2 female: the model the joints were computed with), ``keypoints_3d``
        (17, 3) float32 metres, COCO-17 joints in the canonical z-up frame centred on the SMPL
        pelvis, ``view_index``, ``mesh_index`` (row in the split index), ``sample_idx`` (= idx),
        ``seq_name`` (e.g. 'CMU/01/01_01_poses'), ``frame_index`` (frame in the source sequence),
        ``dataset_name`` (AMASS sub-dataset, e.g. 'CMU'). (No ``flip_indices``: there is no image to
        flip; the COCO-17 flip pairs are in ``metainfo``. Per-sample meta values are deep-copied by
        mmengine, a 17-element list for every sample was a third of the packing time.)

    Raises:
        MoCapIndexError: the split index is missing/incomplete (names the path and the tool).
    """

    METAINFO: dict = dict(from_file=COCO_META_FILE)

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 num_views: int = 4,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 max_meshes: Optional[int] = None,
                 metainfo: Optional[dict] = None,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if int(num_views) < 1:
            raise ValueError(f'num_views must be >= 1, got {num_views}')
        if max_meshes is not None and int(max_meshes) < 1:
            raise ValueError(f'max_meshes must be >= 1 or None, got {max_meshes}')
        self.split = split
        self.num_views = int(num_views)
        self.max_meshes = None if max_meshes is None else int(max_meshes)
        self.index: Optional[MoCapIndex] = None
        self._mesh_ids: Optional[np.ndarray] = None
        super().__init__(ann_file='', metainfo=metainfo, data_root=data_root,
                         data_prefix=dict(), filter_cfg=None, indices=None,
                         serialize_data=False, pipeline=list(pipeline), test_mode=test_mode,
                         lazy_init=lazy_init, max_refetch=max_refetch)

    @classmethod
    def _load_metainfo(cls, metainfo: Optional[dict] = None) -> dict:
        """Parse the COCO-17 meta the way mmpose's own datasets do."""
        from mmpose.datasets.datasets.utils import parse_pose_metainfo
        if metainfo is None:
            metainfo = dict(cls.METAINFO)
        if not isinstance(metainfo, dict):
            raise TypeError(f'metainfo should be a dict, got {type(metainfo)}')
        if 'from_file' in metainfo:
            metainfo = dict(metainfo, from_file=_resolve_meta_file(metainfo['from_file']))
        if 'from_file' in metainfo or 'keypoint_info' in metainfo:
            metainfo = parse_pose_metainfo(metainfo)
        return metainfo

    @property
    def split_dir(self) -> str:
        return osp.join(self.data_root, self.split)

    def full_init(self) -> None:
        """Read and validate ``<data_root>/<split>/index.json`` and the array headers only."""
        if self._fully_initialized:
            return
        self.index = MoCapIndex(self.split_dir)
        m = len(self.index)
        if self.max_meshes is not None and self.max_meshes < m:
            # evenly spaced so a small subset still covers every sequence/dataset
            self._mesh_ids = np.unique(np.linspace(0, m - 1, self.max_meshes).round().astype(
                np.int64))
        else:
            self._mesh_ids = None
        self._metainfo.update(num_views=self.num_views, split=self.split,
                              mocap_index=dict(self.index.metadata))
        self._fully_initialized = True

    def load_data_list(self) -> List[dict]:
        """Not used: items are produced from the arrays on demand (millions of them)."""
        return []

    @property
    def num_meshes(self) -> int:
        """Meshes used (after ``max_meshes``)."""
        if not self._fully_initialized:
            self.full_init()
        return len(self._mesh_ids) if self._mesh_ids is not None else len(self.index)

    def __len__(self) -> int:
        return self.num_meshes * self.num_views

    def get_data_info(self, idx: int) -> dict:
        """The raw item ``idx`` (see the class docstring) -- before the pipeline."""
        if not self._fully_initialized:
            self.full_init()
        n = len(self)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f'index {idx} out of range for {n} items')
        slot, view = divmod(int(idx), self.num_views)
        mesh = int(self._mesh_ids[slot]) if self._mesh_ids is not None else slot
        rec = self.index.get(mesh)
        return self._item(rec['pose'], rec['betas'], rec['gender'], rec['keypoints_3d'], view, mesh,
                          int(idx), rec['seq_name'], rec['frame_index'], rec['dataset_name'])

    @staticmethod
    def _item(pose, betas, gender: int, keypoints_3d, view: int, mesh: int, idx: int, seq_name: str,
              frame_index: int, dataset_name: str) -> dict:
        # the one place that names an item's keys (get_data_info and get_data_infos)
        return dict(smpl_pose=pose, smpl_betas=betas, gender=gender, keypoints_3d=keypoints_3d,
                    view_index=view, mesh_index=mesh, sample_idx=idx, seq_name=seq_name,
                    frame_index=frame_index, dataset_name=dataset_name)

    def get_data_infos(self, indices: Sequence[int]) -> List[dict]:
        """``[self.get_data_info(i) for i in indices]``, read with one gather per index array (a
        sample's arrays are then views of the batch's)."""
        if not self._fully_initialized:
            self.full_init()
        n = len(self)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + n, idx)
        if len(idx) and not (0 <= idx.min() and idx.max() < n):
            bad = idx[(idx < 0) | (idx >= n)][0]
            raise IndexError(f'index {bad if bad >= 0 else bad - n} out of range for {n} items')
        slot, view = np.divmod(idx, self.num_views)
        mesh = self._mesh_ids[slot] if self._mesh_ids is not None else slot
        rec = self.index.get_many(mesh)
        return [self._item(rec['pose'][i], rec['betas'][i], int(rec['gender'][i]),
                           rec['keypoints_3d'][i], int(view[i]), int(mesh[i]), int(idx[i]),
                           rec['seq_name'][i], int(rec['frame_index'][i]), rec['dataset_name'][i])
                for i in range(len(idx))]

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        """``[self[i] for i in indices]``, computed as a batch: what PyTorch's ``DataLoader`` calls
        for a batch of a map-style dataset. The index rows are gathered at once and, when every
        transform of the pipeline is a :class:`BatchedTransform` (RandomVirtualCamera,
        MaskedHeatmapModeling, PackMeshInputs), the pipeline runs vectorised over the batch (the
        same items under the same random state; tested). Other pipelines, and batches in which a
        transform drops a sample, run item by item."""
        transforms = getattr(self.pipeline, 'transforms', None)
        if not is_batched_pipeline(transforms or []):
            return [self[i] for i in indices]
        state = np.random.get_state()
        try:
            out = run_batched(transforms, self.get_data_infos(indices))
        except NotBatchable:
            out = None
        if out is None or any(r is None for r in out):
            # a dropped sample (or a batch a transform cannot do): the per-item path, from the same
            # random state, with BaseDataset's re-fetch rules
            np.random.set_state(state)
            return [self[i] for i in indices]
        return out

    def get_subset_(self, indices) -> None:  # noqa: D401
        raise NotImplementedError('MoCapHeatmapDataset does not support subsets; use max_meshes')

    def get_subset(self, indices):
        raise NotImplementedError('MoCapHeatmapDataset does not support subsets; use max_meshes')
