"""Images with mesh / joint annotations: the fine-tuning datasets of MPT (Sec. 3.3; the METRO mixture
Human3.6M, MuCo-3DHP, UP-3D, COCO, MPII and 3DPW).

One dataset class for the three annotation formats users have (METRO TSV, SPIN npz, mmhuman3d
HumanData npz; see :mod:`mmpose_mpt.datasets.formats`), detected from the file. The annotations are
read once into compact arrays (no per-sample Python dicts); images are read per item by the pipeline
(``LoadMeshImage``): from ``img_path`` for the npz formats, from ``img_bytes`` (read from the image
tsv by its line index) for TSV.
"""
from __future__ import annotations

import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmpose.registry import DATASETS

from ..body_models.j24 import J24_FLIP_PERM, J24_NAMES, J24_TO_J14, NUM_J24
from .formats import (MeshAnnotations, MeshImageDatasetError, MetroTSV, check_samples, detect_format,
                      read_humandata_npz, read_spin_npz)

__all__ = ['MeshImageDataset', 'MeshImageDatasetError']


@DATASETS.register_module()
class MeshImageDataset(BaseDataset):
    """Mesh-image samples from a METRO TSV split / composite yaml, a SPIN npz or a HumanData npz.

    Args:
        ann_file: the annotation file (relative to ``data_root`` unless absolute): ``*.yaml`` /
            ``*.tsv`` (METRO; paths in the yaml are relative to its folder), ``*.npz`` with
            ``__data_len__`` / ``image_path`` (HumanData) or ``imgname`` (SPIN).
        data_root: mmengine's root for ``ann_file`` and ``data_prefix``.
        data_prefix: ``dict(img=...)``: the folder the npz image names are relative to (unused for TSV,
            whose images are inside the tsv).
        pipeline: transforms (``LoadMeshImage``, ``MeshImageCrop``, ``PackMeshInputs``).
        test_mode: mmengine's flag (no re-fetch on a None pipeline result).
        dataset_name: name in ``metainfo`` and every item; None = the annotation file's name.
        max_samples: keep only this many samples, evenly spaced (deterministic), after ``indices``.
        sample_fraction: keep this fraction (0, 1] of the samples (``round``, at least 1), evenly
            spaced like ``max_samples`` and before it (Fig. 4b's 0.1 / 1 / 10 % of Human3.6M): a
            deterministic subset that covers the whole file (every subject / action of a video set),
            where ``indices=n`` would keep its first n samples.
        indices: mmengine's subset: an int n = the first n samples, a sequence = those positions
            (both over the samples left after the skips).
        gendered: report each sample's gender from the file (False: 0 = neutral for all).
        bbox_scale: factor on every sample's ``scale`` (e.g. 1.2 to enlarge mmhuman3d's raw COCO boxes).
        h36m_origin: HumanData only: the file comes from mmhuman3d's Human3.6M converter (the head
            trap, see :mod:`~mmpose_mpt.datasets.formats.humandata_npz`); None = auto from its
            ``config``.
        create_lineidx: TSV only: write a missing ``.lineidx`` (one pass over the tsv, as METRO).
        metainfo: overrides of :attr:`METAINFO`.
        lazy_init, max_refetch: mmengine's.

    Item (``get_data_info(idx)``): ``img_path`` str (npz: the image file; TSV ``'<img.tsv>#<row>'``),
    ``img_bytes`` (TSV only: the encoded image), ``sample_idx`` (= idx), ``id`` (row key / image
    name), ``dataset_name``, ``center`` (2,) float32 px, ``scale`` float32 (box side / 200),
    ``keypoints_2d_j24`` (24, 3) float32 [x, y, conf] px, ``keypoints_3d_j24`` (24, 4) float32
    [x, y, z, conf] metres (camera frame), ``smpl_pose`` (72,) float32 axis-angle, ``smpl_betas``
    (10,) float32, ``has_smpl`` / ``has_2d_joints`` / ``has_3d_joints`` float32 0/1, ``gender`` int64
    (0 neutral / unknown, 1 male, 2 female).

    Attributes:
        skipped: {reason: count} of the samples dropped at build time (see
            :data:`~mmpose_mpt.datasets.formats.SKIP_REASONS`); also logged as one line.
        format: 'metro_tsv' | 'spin' | 'humandata'.

    Raises:
        MeshImageDatasetError: the annotation file cannot be used (names the file, key / row and the
        problem).
    """

    METAINFO: dict = dict(dataset_name='mesh_images', num_keypoints=NUM_J24,
                          keypoint_names=list(J24_NAMES), flip_indices=list(J24_FLIP_PERM),
                          lsp14_indices=list(J24_TO_J14))

    def __init__(self,
                 ann_file: str,
                 data_root: Optional[str] = '',
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 dataset_name: Optional[str] = None,
                 max_samples: Optional[int] = None,
                 sample_fraction: Optional[float] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 gendered: bool = True,
                 bbox_scale: float = 1.0,
                 h36m_origin: Optional[bool] = None,
                 create_lineidx: bool = True,
                 metainfo: Optional[dict] = None,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if not ann_file:
            raise MeshImageDatasetError('MeshImageDataset: ann_file is required')
        if max_samples is not None and int(max_samples) < 1:
            raise ValueError(f'max_samples must be >= 1 or None, got {max_samples}')
        if sample_fraction is not None and not 0 < float(sample_fraction) <= 1:
            raise ValueError(f'sample_fraction must be in (0, 1] or None, got {sample_fraction}')
        if not (np.isfinite(bbox_scale) and bbox_scale > 0):
            raise ValueError(f'bbox_scale must be > 0, got {bbox_scale}')
        self.dataset_name = dataset_name or osp.splitext(osp.basename(ann_file))[0]
        self.max_samples = None if max_samples is None else int(max_samples)
        self.sample_fraction = None if sample_fraction is None else float(sample_fraction)
        self.gendered = bool(gendered)
        self.bbox_scale = float(bbox_scale)
        self.h36m_origin = h36m_origin
        self.create_lineidx = bool(create_lineidx)
        self.skipped: Dict[str, int] = {}
        self.format: Optional[str] = None
        self._ann: Optional[MeshAnnotations] = None
        self._tsv: Optional[MetroTSV] = None
        self._ids: Optional[np.ndarray] = None
        super().__init__(ann_file=ann_file, metainfo=metainfo, data_root=data_root or '',
                         data_prefix=dict(img='') if data_prefix is None else dict(data_prefix),
                         filter_cfg=None, indices=indices, serialize_data=False, pipeline=list(pipeline),
                         test_mode=test_mode, lazy_init=lazy_init, max_refetch=max_refetch)
        # set here, not passed in: mmengine's _load_metainfo reads a str value as a file name if one
        # exists (a dataset called 'train' next to a file 'train' would become its lines)
        if not (metainfo and 'dataset_name' in metainfo):
            self._metainfo['dataset_name'] = self.dataset_name

    # -- building ----------------------------------------------------------------------------------
    def _read(self) -> MeshAnnotations:
        self.format = detect_format(self.ann_file)
        if self.format == 'metro_tsv':
            self._tsv = MetroTSV(self.ann_file, create_lineidx=self.create_lineidx)
            return self._tsv.annotations
        if self.format == 'humandata':
            return read_humandata_npz(self.ann_file, h36m_origin=self.h36m_origin)
        return read_spin_npz(self.ann_file)

    def full_init(self) -> None:
        """Read the annotations, drop (and count) unusable samples, apply ``indices`` / ``max_samples``."""
        if self._fully_initialized:
            return
        ann = self._read()
        if self.bbox_scale != 1.0:
            ann.scale = (ann.scale * self.bbox_scale).astype(np.float32)
        if not self.gendered:
            ann.gender[:] = 0
        keep, self.skipped = check_samples(ann)
        ids = np.flatnonzero(keep)
        total = len(ann)
        detail = ', '.join(f'{k}={v}' for k, v in self.skipped.items()) or 'none'
        print_log(f'MeshImageDataset {self.dataset_name!r} ({self.format}, {self.ann_file}): '
                  f'{len(ids)} of {total} samples kept; skipped: {detail}', logger='current')
        if self._indices is not None:
            ids = self._subset(ids, self._indices)
        by_fraction = None if self.sample_fraction is None else \
            max(1, int(round(self.sample_fraction * len(ids))))
        for n in (by_fraction, self.max_samples):
            if n is not None and n < len(ids):
                # evenly spaced, so a small subset still covers the whole file
                ids = ids[np.unique(np.linspace(0, len(ids) - 1, n).round().astype(np.int64))]
        self._ann, self._ids = ann, ids
        self._fully_initialized = True

    def _subset(self, ids: np.ndarray, indices: Union[int, Sequence[int]]) -> np.ndarray:
        if isinstance(indices, (int, np.integer)):
            return ids[:int(indices)]
        sel = np.asarray(list(indices), np.int64).reshape(-1)
        if len(sel) and (sel.min() < -len(ids) or sel.max() >= len(ids)):
            raise MeshImageDatasetError(f'{self.ann_file}: indices out of range for {len(ids)} samples')
        return ids[sel]

    def load_data_list(self) -> List[dict]:
        """Not used: items are made from the annotation arrays on demand."""
        return []

    # -- items ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self._ids)

    def get_data_info(self, idx: int) -> dict:
        """The raw item ``idx`` (see the class docstring) -- before the pipeline."""
        if not self._fully_initialized:
            self.full_init()
        n = len(self._ids)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f'index {idx} out of range for {n} samples')
        i = int(self._ids[idx])
        a = self._ann
        info = dict(
            sample_idx=int(idx), id=str(a.ids[i]), dataset_name=self.dataset_name,
            center=a.center[i].copy(), scale=np.float32(a.scale[i]),
            keypoints_2d_j24=a.keypoints_2d[i].copy(), keypoints_3d_j24=a.keypoints_3d[i].copy(),
            smpl_pose=a.smpl_pose[i].copy(), smpl_betas=a.smpl_betas[i].copy(),
            has_smpl=np.float32(a.has_smpl[i]), has_2d_joints=np.float32(a.has_2d_joints[i]),
            has_3d_joints=np.float32(a.has_3d_joints[i]), gender=np.int64(a.gender[i]))
        if self._tsv is not None:
            info['img_path'] = self._tsv.image_path(i)
            info['img_bytes'] = self._tsv.read_image(i)
        else:
            info['img_path'] = osp.join(self.data_prefix.get('img', ''), str(a.img_names[i]))
        return info

    @property
    def source_indices(self) -> np.ndarray:
        """(len,) int64: each item's sample number in the annotation file (TSV: in its linelist)."""
        if not self._fully_initialized:
            self.full_init()
        return self._ids.copy()
