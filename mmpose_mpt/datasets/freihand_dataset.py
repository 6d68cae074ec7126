"""FreiHAND (Zimmermann et al., ICCV 2019) read from its release layout -- the hand fine-tuning and
test data of MPT (Table 6).

Layout (lmb-freiburg/freihand ``utils/fh_utils.py``)::

    <data_root>/training_K.json       N x (3, 3) camera intrinsics (px)
               training_mano.json    N x (1, 61) MANO: 48 axis-angle pose (global 3 + 15 fingers x 3,
                                     relative to MANO's hands_mean), 10 shape, 2 uv_root (px), 1 scale
                                     (``utils/model.py`` ``split_theta``)
               training_xyz.json     N x (21, 3) camera-frame joints, metres, FreiHAND order
               training_verts.json   N x (778, 3) camera-frame MANO vertices, metres
               training/rgb/%08d.jpg 224 x 224 images, 4 versions of every sample
               evaluation_K.json     the same for the 3960 evaluation samples; evaluation_xyz.json /
               evaluation_verts.json / evaluation_mano.json where present (the released test ground
               truth); evaluation/rgb/%08d.jpg (one version)

Each json is a plain list indexed by the unique sample id (N = 32560 training, 3960 evaluation);
``training_K/_mano/_xyz.json`` are required for training, ``evaluation_K.json`` for evaluation, the
others are used where present. The four training image versions share the annotation: image
``id + 32560 * v`` for ``v`` = 0 green screen ('gs'), 1 'hom', 2 'sample', 3 'auto'
(``sample_version.map_id``; the evaluation split has 'gs' only).

Large json files (``training_verts.json`` is ~1 GB) are parsed one sample at a time into float
arrays (never one Python float per value for the whole file); ``cache_dir`` keeps the parsed arrays
as ``.npy`` files for the next run.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmpose.registry import DATASETS

from ..body_models.joint_regressors import FREIHAND21_NAMES
from ..utils.cli import MPTUserError

__all__ = ['FreiHANDDataset', 'FreiHANDDatasetError', 'project_points', 'FREIHAND_VERSIONS',
           'FREIHAND_TRAINING_SIZE']

FREIHAND_VERSIONS = ('gs', 'hom', 'sample', 'auto')  # fh_utils.sample_version.valid_options()
FREIHAND_TRAINING_SIZE = 32560  # fh_utils.db_size('training'): the image-number stride of the versions
SPLITS = ('training', 'evaluation')
BBOX_MODES = ('joints', 'image')
NUM_JOINTS = 21
NUM_VERTICES = 778
MANO_PARAMS = 61  # 48 pose + 10 shape + 2 uv_root + 1 scale

# per-file item shape; mano accepts (1, 61) (the release) and (61,)
_SHAPES = {'K': (3, 3), 'xyz': (NUM_JOINTS, 3), 'verts': (NUM_VERTICES, 3), 'mano': (MANO_PARAMS, )}
_WS = re.compile(r'[ \t\n\r]*')


class FreiHANDDatasetError(MPTUserError, ValueError):
    """A FreiHAND file cannot be used (missing, not a json list, lists of unequal length, a sample of
    the wrong shape, missing images ...): the message names the file and the problem."""


def project_points(xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    """FreiHAND's ``projectPoints``: ``uv = (K @ xyz.T).T``, ``uv[:, :2] / uv[:, 2:]``.

    Args:
        xyz: (..., P, 3) camera-frame points (metres); K: (..., 3, 3) intrinsics (px).

    Returns:
        np.ndarray: (..., P, 2) pixel coordinates.
    """
    uv = np.einsum('...ij,...pj->...pi', K, xyz)
    return uv[..., :2] / uv[..., 2:]


# ------------------------------------------------------------------------------------------ json
def _iter_json_list(path: str):
    """Yield the elements of a top-level json list one at a time (C-speed ``raw_decode`` per element)."""
    try:
        with open(path, 'r', encoding='utf-8') as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as e:
        raise FreiHANDDatasetError(f'{path}: cannot read ({type(e).__name__}: {e})') from None
    dec = json.JSONDecoder()
    pos = _WS.match(text, 0).end()
    if text[pos:pos + 1] != '[':
        raise FreiHANDDatasetError(f'{path}: not a FreiHAND annotation file (expected a json list)')
    pos = _WS.match(text, pos + 1).end()
    if text[pos:pos + 1] == ']':
        end = pos + 1
    else:
        while True:
            try:
                obj, pos = dec.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise FreiHANDDatasetError(f'{path}: invalid json ({e})') from None
            yield obj
            pos = _WS.match(text, pos).end()
            c = text[pos:pos + 1]
            if c == ',':
                pos = _WS.match(text, pos + 1).end()
                continue
            if c == ']':
                end = pos + 1
                break
            raise FreiHANDDatasetError(f'{path}: invalid json (expected "," or "]" at character {pos})')
    if _WS.match(text, end).end() != len(text):
        raise FreiHANDDatasetError(f'{path}: invalid json (extra data after the list at character {end})')


def _read_array_list(path: str, key: str, dtype) -> np.ndarray:
    """A json list of per-sample arrays -> (N, *shape) array, every sample checked."""
    shape = _SHAPES[key]
    out = []
    for i, obj in enumerate(_iter_json_list(path)):
        try:
            arr = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError):
            raise FreiHANDDatasetError(f'{path}: sample {i} is not a numeric array') from None
        if key == 'mano' and arr.shape == (1, MANO_PARAMS):
            arr = arr[0]
        if arr.shape != shape:
            want = '(1, 61) (48 pose + 10 shape + 2 uv_root + 1 scale)' if key == 'mano' else str(shape)
            raise FreiHANDDatasetError(f'{path}: sample {i} has shape {arr.shape}, expected {want}')
        if not np.isfinite(arr).all():
            raise FreiHANDDatasetError(f'{path}: sample {i} contains NaN / inf')
        out.append(arr.astype(dtype))
    if not out:
        raise FreiHANDDatasetError(f'{path}: the list is empty')
    return np.stack(out)


def _load(path: str, key: str, dtype, cache_dir: Optional[str]) -> np.ndarray:
    """:func:`_read_array_list`, through a ``.npy`` cache keyed by the json's size and mtime."""
    if not cache_dir:
        return _read_array_list(path, key, dtype)
    st = os.stat(path)
    stem = f'{osp.splitext(osp.basename(path))[0]}_{st.st_size}_{st.st_mtime_ns}'
    cached = osp.join(cache_dir, f'{stem}.npy')
    if osp.isfile(cached):
        try:
            arr = np.load(cached, mmap_mode='r', allow_pickle=False)
            if arr.dtype == dtype and arr.shape[1:] == _SHAPES[key]:
                return arr
        except (OSError, ValueError):
            pass  # a broken cache file is re-made below
    arr = _read_array_list(path, key, dtype)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f'{cached}.tmp{os.getpid()}.npy'
    np.save(tmp, arr)
    os.replace(tmp, cached)
    return arr


# --------------------------------------------------------------------------------------- dataset
@DATASETS.register_module()
class FreiHANDDataset(BaseDataset):
    """FreiHAND samples from the raw release files (see the module docstring).

    Args:
        data_root: the folder holding ``<split>_*.json`` and ``<split>/rgb/``.
        split: ``'training'`` or ``'evaluation'``.
        versions: training image versions to use, a subset of ``('gs', 'hom', 'sample', 'auto')``
            (default all four: 4 x 32560 items); evaluation: ``('gs',)`` only.
        version_stride: image number of version ``v`` = ``id + version_stride * v`` (FreiHAND: 32560).
        pipeline, test_mode, lazy_init, max_refetch: mmengine's.
        bbox_mode: ``'joints'``: the square box around the 2D joints, side = ``bbox_padding`` x the
            larger side of their bounding rectangle, centred on it (samples without 2D joints use the
            whole image); ``'image'``: centred on the image, side = ``bbox_padding`` x the image side
            (0.8 = mmpose's FreiHAND crop, 179.2 px; METRO takes 180 px).
        bbox_padding: see ``bbox_mode`` (default 1.5: the joints miss the finger and palm flesh).
        image_size: (width, height) of the images, px (FreiHAND: 224 x 224; not read per image).
        check_images: at build time, list each ``rgb`` folder once and raise if an image is missing.
        mano_model_path: a MANO model (file or folder, :class:`~mmpose_mpt.body_models.MANO`): also
            emit ``mano_transl``. FreiHAND stores no MANO translation; it is recovered as the
            least-squares translation putting the 16 skeleton joints of MANO(pose, shape) onto ``xyz``
            (FreiHAND's ``pose_by_root`` fits keypoint 9 alone; for consistent data the same).
        cache_dir: keep the parsed json arrays here as ``.npy`` (re-made when a json changes).
        indices: mmengine's subset (an int n = the first n items, a sequence = those items).
        max_samples: keep this many items, evenly spaced, after ``indices``.
        metainfo: overrides of :attr:`METAINFO`.

    Item (``get_data_info(idx)``; items run version-major: ``idx = v * N + id``): ``img_path``,
    ``sample_idx`` (= idx), ``id`` (unique sample id, the json index), ``image_id`` (the image
    number), ``version`` ('gs' ...), ``dataset_name``, ``K`` (3, 3) float32 px,
    ``keypoints_2d`` (21, 3) float32 [u, v, conf] px by ``projectPoints`` (K @ xyz, divided by z),
    ``keypoints_3d`` (21, 4) float32 [x, y, z, conf] metres, camera frame (root = wrist, joint 0),
    ``vertices`` (778, 3) float32 metres, ``mano_pose`` (48,) / ``mano_betas`` (10,) /
    ``mano_uv_root`` (2,) float32, ``mano_scale`` float32, ``mano_transl`` (3,) float32 metres (with
    ``mano_model_path``), ``has_2d_joints`` / ``has_3d_joints`` / ``has_vertices`` / ``has_mano`` /
    ``has_mano_transl`` float32 0/1 (arrays are zeros where the file is absent), ``center`` (2,)
    float32 px, ``scale`` float32 (box side / 200, METRO / SPIN), ``bbox`` (4,) float32 x0 y0 x1 y1.

    Raises:
        FreiHANDDatasetError: a file is missing / malformed, the lists differ in length, a sample has
        the wrong shape or a point behind the camera, images are missing (names the file).
    """

    METAINFO: dict = dict(dataset_name='freihand', num_keypoints=NUM_JOINTS,
                          keypoint_names=list(FREIHAND21_NAMES), root_index=0,
                          flip_indices=list(range(NUM_JOINTS)), num_vertices=NUM_VERTICES)

    def __init__(self,
                 data_root: str,
                 split: str = 'training',
                 versions: Optional[Sequence[str]] = None,
                 version_stride: int = FREIHAND_TRAINING_SIZE,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 bbox_mode: str = 'joints',
                 bbox_padding: float = 1.5,
                 image_size: Tuple[int, int] = (224, 224),
                 check_images: bool = True,
                 mano_model_path: Optional[str] = None,
                 cache_dir: Optional[str] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 max_samples: Optional[int] = None,
                 metainfo: Optional[dict] = None,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if not data_root:
            raise FreiHANDDatasetError('FreiHANDDataset: data_root is required')
        if split not in SPLITS:
            raise FreiHANDDatasetError(f'FreiHANDDataset: split must be one of {SPLITS}, got {split!r}')
        if versions is None:
            versions = FREIHAND_VERSIONS if split == 'training' else ('gs', )
        versions = (versions, ) if isinstance(versions, str) else tuple(versions)
        bad = [v for v in versions if v not in FREIHAND_VERSIONS]
        if bad or not versions or len(set(versions)) != len(versions):
            raise FreiHANDDatasetError(f'FreiHANDDataset: versions must be distinct names from '
                                       f'{FREIHAND_VERSIONS}, got {versions}')
        if split == 'evaluation' and versions != ('gs', ):
            raise FreiHANDDatasetError("FreiHANDDataset: the evaluation split has only version 'gs', "
                                       f'got {versions}')
        if bbox_mode not in BBOX_MODES:
            raise FreiHANDDatasetError(f'FreiHANDDataset: bbox_mode must be one of {BBOX_MODES}, '
                                       f'got {bbox_mode!r}')
        if not (np.isfinite(bbox_padding) and bbox_padding > 0):
            raise FreiHANDDatasetError(f'FreiHANDDataset: bbox_padding must be > 0, got {bbox_padding}')
        if max_samples is not None and int(max_samples) < 1:
            raise FreiHANDDatasetError(f'FreiHANDDataset: max_samples must be >= 1, got {max_samples}')
        self.split = split
        self.versions = versions
        self.version_stride = int(version_stride)
        self.bbox_mode = bbox_mode
        self.bbox_padding = float(bbox_padding)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.check_images = bool(check_images)
        self.mano_model_path = mano_model_path
        self.cache_dir = cache_dir
        self.max_samples = None if max_samples is None else int(max_samples)
        self._arrays: Dict[str, np.ndarray] = {}
        self._items: Optional[np.ndarray] = None
        self._num_ids = 0
        super().__init__(ann_file='', metainfo=metainfo, data_root=data_root, data_prefix=dict(img=''),
                         filter_cfg=None, indices=indices, serialize_data=False, pipeline=list(pipeline),
                         test_mode=test_mode, lazy_init=lazy_init, max_refetch=max_refetch)

    # -- building ----------------------------------------------------------------------------------
    def _json(self, key: str) -> str:
        return osp.join(self.data_root, f'{self.split}_{key}.json')

    def _image_dir(self) -> str:
        return osp.join(self.data_root, self.split, 'rgb')

    def _read_annotations(self) -> Dict[str, np.ndarray]:
        required = ('K', 'mano', 'xyz') if self.split == 'training' else ('K', )
        arrays: Dict[str, np.ndarray] = {}
        for key in ('K', 'xyz', 'verts', 'mano'):
            path = self._json(key)
            if not osp.isfile(path):
                if key in required:
                    raise FreiHANDDatasetError(
                        f'{path}: FreiHAND annotation file not found (the {self.split} split needs '
                        f'{", ".join(f"{self.split}_{k}.json" for k in required)})')
                continue
            dtype = np.float32 if key == 'verts' else np.float64
            arrays[key] = _load(path, key, dtype, self.cache_dir)
        n = len(arrays['K'])
        for key, arr in arrays.items():
            if len(arr) != n:
                raise FreiHANDDatasetError(
                    f'{self._json(key)}: {len(arr)} samples, but {self._json("K")} has {n} (the FreiHAND '
                    'files are lists over the same samples and must have equal lengths)')
        if 'xyz' in arrays:
            z = np.einsum('nij,npj->npi', arrays['K'], arrays['xyz'])[..., 2]
            bad = np.argwhere(~(z > 0))
            if len(bad):
                i, j = (int(x) for x in bad[0])
                raise FreiHANDDatasetError(
                    f'{self._json("xyz")}: sample {i} joint {j} is not in front of the camera of '
                    f'{self._json("K")} (depth {z[i, j]:.4g}; {len(bad)} such joints): cannot project')
        if self.versions != ('gs', ) and self.version_stride < n:
            raise FreiHANDDatasetError(
                f'{self._json("K")}: {n} samples but version_stride={self.version_stride}: the image '
                'numbers of the versions would overlap')
        return arrays

    def _check_images(self, image_ids: np.ndarray) -> None:
        folder = self._image_dir()
        if not osp.isdir(folder):
            raise FreiHANDDatasetError(f'{folder}: FreiHAND image folder not found')
        present = set(os.listdir(folder))
        missing = [i for i in image_ids.tolist() if f'{i:08d}.jpg' not in present]
        if missing:
            raise FreiHANDDatasetError(
                f'{osp.join(folder, f"{missing[0]:08d}.jpg")}: image not found ({len(missing)} of '
                f'{len(image_ids)} images of versions {self.versions} are missing)')

    def _mano_transl(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        """(N, 3) metres: mean over the 16 skeleton joints of ``xyz - MANO(pose, shape)``."""
        import torch

        from ..body_models.joint_regressors import MANO21_TO_OPENPOSE
        from ..body_models.mano import MANO
        model = MANO(self.mano_model_path, flat_hand_mean=False, dtype=torch.float64)
        skeleton = [k for k, m in enumerate(MANO21_TO_OPENPOSE) if m < model.num_joints]  # not the tips
        mano, xyz = arrays['mano'], arrays['xyz']
        out = np.zeros((len(mano), 3))
        with torch.no_grad():
            for s in range(0, len(mano), 1024):
                p = torch.as_tensor(np.asarray(mano[s:s + 1024]))
                joints = model.joints21(model(betas=p[:, 48:58], global_orient=p[:, :3],
                                              hand_pose=p[:, 3:48])).numpy()
                out[s:s + 1024] = (xyz[s:s + 1024, skeleton] - joints[:, skeleton]).mean(axis=1)
        return out

    def full_init(self) -> None:
        """Read and check the json files (and the image folder), build the item index."""
        if self._fully_initialized:
            return
        arrays = self._read_annotations()
        n = len(arrays['K'])
        if 'xyz' in arrays:
            arrays['uv'] = project_points(arrays['xyz'], arrays['K'])
        if self.mano_model_path is not None:
            if 'mano' not in arrays or 'xyz' not in arrays:
                raise FreiHANDDatasetError(
                    f'{self._json("mano")}: mano_model_path needs {self.split}_mano.json and '
                    f'{self.split}_xyz.json to recover the MANO translation')
            arrays['transl'] = self._mano_transl(arrays)
        arrays['center'], arrays['side'] = self._boxes(arrays.get('uv'), n)
        version_ids = np.array([FREIHAND_VERSIONS.index(v) for v in self.versions], np.int64)
        items = (np.arange(n)[None] + 0 * version_ids[:, None]).reshape(-1)
        vers = np.repeat(version_ids, n)
        image_ids = items + self.version_stride * vers
        if self.check_images:
            self._check_images(image_ids)
        order = np.arange(len(items))
        if self._indices is not None:
            if isinstance(self._indices, (int, np.integer)):
                order = order[:int(self._indices)]
            else:
                sel = np.asarray(list(self._indices), np.int64).reshape(-1)
                if len(sel) and (sel.min() < -len(order) or sel.max() >= len(order)):
                    raise FreiHANDDatasetError(f'FreiHANDDataset: indices out of range for {len(order)} items')
                order = order[sel]
        if self.max_samples is not None and self.max_samples < len(order):
            order = order[np.unique(np.linspace(0, len(order) - 1, self.max_samples).round().astype(np.int64))]
        self._arrays = arrays
        self._num_ids = n
        self._items = np.stack([items[order], vers[order], image_ids[order]], 1)
        print_log(f'FreiHANDDataset ({self.data_root}, {self.split}, versions {self.versions}): '
                  f'{len(self._items)} items of {n} samples; annotations: '
                  f'{", ".join(k for k in ("K", "xyz", "verts", "mano") if k in arrays)}',
                  logger='current')
        self._fully_initialized = True

    def _boxes(self, uv: Optional[np.ndarray], n: int) -> Tuple[np.ndarray, np.ndarray]:
        """(N, 2) centres and (N,) square sides (px), see ``bbox_mode``."""
        w, h = self.image_size
        center = np.tile(np.array([w / 2.0, h / 2.0]), (n, 1))
        side = np.full(n, float(max(w, h)))
        if self.bbox_mode == 'image':
            return center, side * self.bbox_padding
        if uv is None:  # no 2D joints: the whole image
            return center, side
        lo, hi = uv.min(axis=1), uv.max(axis=1)
        return (lo + hi) / 2.0, (hi - lo).max(axis=1) * self.bbox_padding

    def load_data_list(self) -> List[dict]:
        """Not used: items are made from the annotation arrays on demand."""
        return []

    # -- items -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self._items)

    def get_data_info(self, idx: int) -> dict:
        """The raw item ``idx`` (see the class docstring) -- before the pipeline."""
        if not self._fully_initialized:
            self.full_init()
        n = len(self._items)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f'index {idx} out of range for {n} items')
        i, v, image_id = (int(x) for x in self._items[idx])
        a = self._arrays
        f32 = np.float32
        info = dict(sample_idx=int(idx), id=i, image_id=image_id, version=FREIHAND_VERSIONS[v],
                    dataset_name=self._metainfo.get('dataset_name', 'freihand'),
                    img_path=osp.join(self._image_dir(), f'{image_id:08d}.jpg'),
                    K=a['K'][i].astype(f32))
        has_j = 'xyz' in a
        kp2 = np.zeros((NUM_JOINTS, 3), f32)
        kp3 = np.zeros((NUM_JOINTS, 4), f32)
        if has_j:
            kp2[:, :2], kp2[:, 2] = a['uv'][i], 1.0
            kp3[:, :3], kp3[:, 3] = a['xyz'][i], 1.0
        info.update(keypoints_2d=kp2, keypoints_3d=kp3, has_2d_joints=f32(has_j), has_3d_joints=f32(has_j))
        has_v = 'verts' in a
        info['vertices'] = np.array(a['verts'][i], f32) if has_v else np.zeros((NUM_VERTICES, 3), f32)
        info['has_vertices'] = f32(has_v)
        m = np.asarray(a['mano'][i], np.float64) if 'mano' in a else np.zeros(MANO_PARAMS)
        info.update(mano_pose=m[:48].astype(f32), mano_betas=m[48:58].astype(f32),
                    mano_uv_root=m[58:60].astype(f32), mano_scale=f32(m[60]), has_mano=f32('mano' in a))
        has_t = 'transl' in a
        info['mano_transl'] = a['transl'][i].astype(f32) if has_t else np.zeros(3, f32)
        info['has_mano_transl'] = f32(has_t)
        c, side = a['center'][i], float(a['side'][i])
        info.update(center=c.astype(f32), scale=f32(side / 200.0),
                    bbox=np.array([c[0] - side / 2, c[1] - side / 2, c[0] + side / 2, c[1] + side / 2], f32))
        return info

    @property
    def num_samples(self) -> int:
        """Unique samples in the json files (N)."""
        if not self._fully_initialized:
            self.full_init()
        return self._num_ids
