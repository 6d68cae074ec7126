"""MeshInferencer: MPT meshes from images, folders, videos and webcams through mmpose's inferencer API.

Same conventions as mmpose 1.x's ``Pose2DInferencer`` (``mmpose.apis.inferencers``): a subclass of
``BaseMMPoseInferencer`` registered in mmpose's ``INFERENCERS`` (as ``'MeshInferencer'`` and
``'mesh-estimation'``); ``inferencer(inputs, **kwargs)`` is a generator yielding one result dict per
image / frame (``{'predictions': [...], 'visualization': [...]}``), and the keyword arguments are the
same sets (``bbox_thr``, ``nms_thr``, ``bboxes``; ``return_vis``, ``show``, ``vis_out_dir``,
``draw_bbox`` ...; ``pred_out_dir``, ``return_datasample(s)``) plus ``fit_smpl``, ``side_view``,
``export``.

Per image: decode (BGR uint8; grayscale / RGBA / 16-bit converted, corrupt or huge files refused) →
person boxes (mmdet ``DetInferencer``, ``det_model='whole_image'``, or the user's ``bboxes=``) → one
square crop per person (side ``1.2 max(w, h)`` of the box, ``input_size`` pixels, the crop of
:class:`~mmpose_mpt.datasets.transforms.MeshImageCrop`) → **all persons in one forward** of the pose
network + MPT head (or of the ONNX file, ``backend='onnxruntime'``) → each crop's weak-perspective camera
turned into a translation in the image's own camera (:mod:`.full_image_camera`) → optional SMPL fit
(:func:`~mmpose_mpt.apis.fit_smpl`) → rendering (:class:`~mmpose_mpt.visualization.MeshVisualizer`) and
exports (:mod:`.mesh_export`: one JSON per image, OBJ / PLY per person in camera coordinates).

Models come from a config file (+ ``weights``) or from an alias of the plugin's own metafile
(``model-index.yml`` → ``configs/mpt/metafile.yml``), resolved to local files only: nothing is ever
downloaded; a missing checkpoint is one error saying where to put it.
"""
import logging
import os
import os.path as osp
import time
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from ..utils.cli import MPTUserError
from ..utils.mmpose_compat import ensure_mmpose_visualization_importable

ensure_mmpose_visualization_importable()
from mmpose.apis.inferencers.base_mmpose_inferencer import BaseMMPoseInferencer  # noqa: E402
from mmpose.registry import INFERENCERS  # noqa: E402
from mmpose.structures import PoseDataSample  # noqa: E402

from .full_image_camera import (BOX_PADDING, crop_box_of_bbox, crop_to_full_camera,  # noqa: E402
                                default_principal_point, project_points, resolve_focal_length)

__all__ = ['MeshInferencer', 'MeshInferencerError', 'MeshModelNotFoundError', 'load_image', 'load_model_config',
           'resolve_model_alias', 'list_image_files', 'IMAGE_EXTENSIONS', 'VIDEO_EXTENSIONS', 'MAX_IMAGE_PIXELS', 'STAGES']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pbm',
                    '.jp2')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.mpg', '.mpeg', '.m4v', '.wmv', '.flv')
# 64 megapixels (e.g. 9248 x 6936, a 64 MP phone photo): larger images would be decoded into > 190 MB and
# then cropped to 224 px anyway; a larger limit can be passed (max_image_pixels=)
MAX_IMAGE_PIXELS = 64_000_000
STAGES = ('decode', 'detect', 'crop', 'pose_net', 'head', 'camera', 'fit', 'render', 'export')
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# mmpose's default person detector (mmpose/apis/inferencers/utils/default_det_models.py), as a local file
DEFAULT_DET_CONFIG = 'demo/mmdetection_cfg/rtmdet_m_640-8xb32_coco-person.py'   # in mmpose's package data
DEFAULT_DET_WEIGHTS_URL = ('https://download.openmmlab.com/mmpose/v1/projects/rtmpose/'
                           'rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth')


class MeshInferencerError(MPTUserError, ValueError):
    """Bad input to :class:`MeshInferencer` (unreadable image, unopenable video, bad option, ...)."""


class MeshModelNotFoundError(MeshInferencerError):
    """A model alias, config or checkpoint that is not on this machine (nothing is downloaded)."""


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------
def _to_bgr_uint8(img: np.ndarray, where: str) -> np.ndarray:
    """(H, W), (H, W, 1|3|4) uint8 / uint16 / float arrays → (H, W, 3) uint8 BGR."""
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in
                                                                       (1, 3, 4)):
        shape = getattr(img, 'shape', None)
        raise MeshInferencerError(f'{where}: expected an image array (H, W), (H, W, 3) BGR or (H, W, 4) '
                                  f'BGRA, got {type(img).__name__} of shape {shape}')
    if img.size == 0:
        raise MeshInferencerError(f'{where}: empty image ({img.shape})')
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)          # the high byte, as OpenCV's IMREAD_COLOR does
    elif img.dtype.kind == 'f':
        if not np.isfinite(img).all():
            raise MeshInferencerError(f'{where}: the image array has NaN / inf values')
        scale = 255.0 if img.max() <= 1.0 else 1.0  # [0, 1] floats (matplotlib / skimage style)
        img = np.clip(img * scale + 0.5, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise MeshInferencerError(f'{where}: unsupported image dtype {img.dtype} (use uint8, uint16 or '
                                  'float)')
    if img.ndim == 2 or img.shape[2] == 1:
        img = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)  # alpha dropped (OpenCV's IMREAD_COLOR does the same)
    return np.ascontiguousarray(img)


def _check_size(w: int, h: int, where: str, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise MeshInferencerError(
            f'{where}: the image is {w}x{h} = {w * h / 1e6:.0f} megapixels, more than max_image_pixels='
            f'{max_pixels / 1e6:.0f} MP; downscale it (the model sees 224 px crops) or raise the limit')


def load_image(image: Union[str, np.ndarray], where: Optional[str] = None,
               max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An input image as (H, W, 3) uint8 BGR.

    Files are decoded as the datasets decode them (:func:`~mmpose_mpt.datasets.transforms.
    load_mesh_image.decode_image`: grayscale, palette, RGBA and 16-bit converted; truncated JPEG / PNG
    refused); arrays may be grayscale, BGR, BGRA, uint8 / uint16 / float.

    Raises:
        MeshInferencerError / MeshImageError: missing, unreadable, corrupt, unsupported or too large
        (> ``max_pixels``), naming the file.
    """
    if isinstance(image, np.ndarray):
        where = where or 'input array'
        img = _to_bgr_uint8(image, where)
        _check_size(img.shape[1], img.shape[0], where, max_pixels)
        return img
    path = os.fspath(image)
    where = where or path
    if not osp.exists(path):
        raise MeshInferencerError(f'{where}: no such file')
    if not osp.isfile(path):
        raise MeshInferencerError(f'{where}: not a file')
    try:  # the header's size first (cheap), so that a huge image is refused before it is decoded
        from PIL import Image
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None   # our own limit and message
        try:
            with Image.open(path) as im:
                size = im.size
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        _check_size(size[0], size[1], where, max_pixels)
    except MeshInferencerError:
        raise
    except Exception:  # noqa: BLE001 - not a format Pillow reads: the decoder below tells
        pass
    from ..datasets.transforms.load_mesh_image import decode_image
    with open(path, 'rb') as fh:
        data = fh.read()
    img = decode_image(data, where)
    _check_size(img.shape[1], img.shape[0], where, max_pixels)
    return img


def list_image_files(folder: str) -> Tuple[List[str], List[str]]:
    """(image files, other files) directly in ``folder``, sorted by name; images by extension."""
    images, others = [], []
    for name in sorted(os.listdir(folder)):
        p = osp.join(folder, name)
        if not osp.isfile(p) or name.startswith('.'):
            continue
        (images if osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS else others).append(p)
    return images, others


class _VideoFrames:
    """The frames of an opened ``mmcv.VideoReader``, with a length (for progress bars)."""

    def __init__(self, reader, path: str):
        self.reader, self.path = reader, path

    def __len__(self) -> int:
        return int(self.reader.frame_cnt)

    def __iter__(self):
        for i in range(len(self)):
            frame = self.reader.read()
            if frame is None:   # containers often over-report their frame count
                break
            yield frame


# --------------------------------------------------------------------------------------------------
# Metafile
# --------------------------------------------------------------------------------------------------
def _metafile_models(repo_root: str = REPO_ROOT) -> List[dict]:
    """The model entries of ``model-index.yml`` (its ``Import`` list of metafiles)."""
    import yaml
    index = osp.join(repo_root, 'model-index.yml')
    if not osp.isfile(index):
        raise MeshModelNotFoundError(f'{index}: no model index (model aliases need the repository '
                                     'checkout); pass a config file instead')
    with open(index) as fh:
        imports = (yaml.safe_load(fh) or {}).get('Import', [])
    models = []
    for rel in imports:
        with open(osp.join(repo_root, rel)) as fh:
            models += (yaml.safe_load(fh) or {}).get('Models', [])
    return models


def resolve_model_alias(name: str, repo_root: str = REPO_ROOT) -> Tuple[str, str, dict]:
    """(config path, local weights path, metafile entry) of a model name or alias.

    An entry's optional ``Cfg Options`` (dotted key: value, e.g. the pose network's checkpoint) are
    applied by :func:`load_model_config`; ``*.pth`` values there are paths relative to the repository.

    Raises:
        MeshModelNotFoundError: unknown name (lists the known ones), or the config is missing.
    """
    models = _metafile_models(repo_root)
    key = name.lower()
    known = []
    for m in models:
        aliases = m.get('Alias', [])
        aliases = [aliases] if isinstance(aliases, str) else list(aliases)
        known.append(m['Name'])
        if key == m['Name'].lower() or key in [a.lower() for a in aliases]:
            cfg = osp.join(repo_root, m['Config'])
            weights = m.get('Weights')
            weights = weights[0] if isinstance(weights, list) else weights
            if not osp.isfile(cfg):
                raise MeshModelNotFoundError(f'model {name!r}: its config {cfg} is missing')
            return cfg, (osp.join(repo_root, weights) if weights else None), m
    raise MeshModelNotFoundError(f'model {name!r} is neither a config file nor a model of '
                                 f'{osp.join(repo_root, "model-index.yml")} (known: {", ".join(known)})')


def load_model_config(name: str, repo_root: str = REPO_ROOT) -> Tuple[Config, Optional[str]]:
    """(Config with the entry's ``Cfg Options`` merged, local weights path) of a metafile model.

    Raises:
        MeshModelNotFoundError: as :func:`resolve_model_alias`, or a ``*.pth`` file of the entry's
            ``Cfg Options`` that is not on this machine (naming where to put it).
    """
    cfg_path, weights, entry = resolve_model_alias(name, repo_root)
    cfg = Config.fromfile(cfg_path)
    opts = {}
    for key, value in (entry.get('Cfg Options') or {}).items():
        if isinstance(value, str) and value.endswith('.pth'):
            value = osp.join(repo_root, value)
            if not osp.isfile(value):
                raise MeshModelNotFoundError(f'model {name!r}: {key} = {value} is not on this machine; put '
                                             'the file there (see configs/mpt/metafile.yml for how it is made)')
        opts[key] = value
    if opts:
        cfg.merge_from_dict(opts)
    # the metafile's models are the repository's: their relative data paths (body models, regressors,
    # mesh sampling) are the repository's too, wherever the caller's working directory is
    cfg.model = _anchor_paths(cfg.model, repo_root)
    return cfg, weights


def _anchor_paths(node, repo_root: str):
    """``node`` with every relative path string that exists under ``repo_root`` (and not from the
    working directory) made absolute."""
    if isinstance(node, dict):
        return type(node)({k: _anchor_paths(v, repo_root) for k, v in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(_anchor_paths(v, repo_root) for v in node)
    if isinstance(node, str) and node and not osp.isabs(node) and ('/' in node or '.' in node) \
            and not osp.exists(node) and osp.exists(osp.join(repo_root, node)):
        return osp.join(repo_root, node)
    return node


# --------------------------------------------------------------------------------------------------
# The inferencer
# --------------------------------------------------------------------------------------------------
@INFERENCERS.register_module(name='mesh-estimation')
@INFERENCERS.register_module()
class MeshInferencer(BaseMMPoseInferencer):
    """Human meshes of every person in images / videos with an MPT model.

    Args:
        model: a config file (e.g. ``configs/mpt/finetune_3dpw.py``), a Config / dict, or a model name
            / alias of ``configs/mpt/metafile.yml`` (e.g. ``'mpt-toy'``), resolved to local files.
        weights: the checkpoint (``.pth``); default: the metafile's local path for an alias. The
            checkpoint must fit the model (keys the config's ``load_partial`` allows may be missing).
            None with a config file: random weights (a warning).
        device: e.g. ``'cpu'``, ``'cuda:0'``; None: mmengine's default.
        scope: registry scope (``'mmpose'``: the plugin registers there).
        det_model: person detector: an mmdet config file, ``'whole_image'`` (the image is one person),
            or None: mmpose's RTMDet-m person config from mmpose's package data, whose weights must be
            a local file (``det_weights`` or ``checkpoints/<its file name>``).
        det_weights: the detector checkpoint (local file).
        det_cat_ids: detector classes that are persons (COCO: 0).
        backend: ``'pytorch'`` or ``'onnxruntime'`` (``onnx_file`` from ``tools/export_onnx.py``; the
            config still gives the body model, crop size and normalisation).
        onnx_file: the ONNX file for ``backend='onnxruntime'``.
        focal_length: the image camera's focal length, px (f or (fx, fy)); None:
            ``sqrt(W^2 + H^2)`` per image (see :mod:`mmpose_mpt.apis.full_image_camera`).
        principal_point: (cx, cy) px; None: the image centre.
        render_backend: for the visualizer (``'auto'``, ``'pyrender-egl'``, ``'pyrender-osmesa'``,
            ``'painter'``).
        max_image_pixels: larger images are refused (one clear error).
        show_progress: a progress bar over the frames / images.

    Call: ``for result in inferencer(inputs, **kwargs): ...`` with ``inputs`` an image path, a folder,
    a video file, ``'webcam'`` / ``'webcam:<id>'``, a numpy image (BGR) or a list of those. Each result:
    ``predictions`` = [list of per-person dicts (one list per image)], ``visualization`` = [RGB
    images] (``return_vis=True``). Per person: ``bbox`` (4,) xyxy px, ``bbox_score``, ``keypoints``
    (J, 2) px (the 3D joints projected), ``keypoint_scores``, ``keypoints_3d`` (J, 3) and ``vertices``
    (V, 3) metres in the image's camera frame (x right, y down, z forward), ``transl`` (3,) (the
    root's position: ``vertices - transl`` is the model's root-relative mesh), ``camera`` (s, tx, ty)
    of the crop, and with ``fit_smpl=True`` ``smpl`` = dict(global_orient, body_pose, betas, transl
    (camera frame), vertex_error metres).
    """

    preprocess_kwargs: set = {'bbox_thr', 'nms_thr', 'bboxes'}
    forward_kwargs: set = {'fit_smpl'}
    visualize_kwargs: set = {'return_vis', 'show', 'wait_time', 'draw_bbox', 'radius', 'thickness', 'kpt_thr',
                             'vis_out_dir', 'black_background', 'side_view', 'alpha'}
    postprocess_kwargs: set = {'pred_out_dir', 'return_datasample', 'export', 'save_vertices'}

    def __init__(self,
                 model: Union[str, dict, Config, None] = None,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = 'mmpose',
                 det_model: Optional[str] = None,
                 det_weights: Optional[str] = None,
                 det_cat_ids: Union[int, Sequence[int]] = 0,
                 backend: str = 'pytorch',
                 onnx_file: Optional[str] = None,
                 focal_length: Union[None, float, Sequence[float]] = None,
                 principal_point: Optional[Sequence[float]] = None,
                 render_backend: str = 'auto',
                 max_image_pixels: int = MAX_IMAGE_PIXELS,
                 show_progress: bool = False) -> None:
        import mmpose_mpt  # noqa: F401 - registers the plugin's models / transforms
        if backend not in ('pytorch', 'onnxruntime'):
            raise MeshInferencerError(f"backend must be 'pytorch' or 'onnxruntime', got {backend!r}")
        if backend == 'onnxruntime' and not onnx_file:
            raise MeshInferencerError("backend='onnxruntime' needs onnx_file= (tools/export_onnx.py CONFIG "
                                      'CHECKPOINT --out FILE)')
        if model is None:
            raise MeshInferencerError('give model= (a config file or a model alias of '
                                      'configs/mpt/metafile.yml)')
        self.backend, self.onnx_file = backend, onnx_file
        self.focal_length, self.principal_point = focal_length, principal_point
        self.render_backend = render_backend
        self.max_image_pixels = int(max_image_pixels)
        self.progress = bool(show_progress)
        self.timings: Dict[str, float] = defaultdict(float)
        self.counts: Dict[str, int] = defaultdict(int)
        if isinstance(model, str) and not osp.isfile(model):
            if model.endswith('.py') or os.sep in model:
                raise MeshModelNotFoundError(f'{model}: config file not found')
            alias_cfg, meta_weights = load_model_config(model)
            if weights is None:
                if meta_weights is None or not osp.isfile(meta_weights):
                    raise MeshModelNotFoundError(
                        f'model {model!r}: its checkpoint is not on this machine; put it at {meta_weights} '
                        f'(see configs/mpt/metafile.yml for how it is made) or pass weights=<file>')
                weights = meta_weights
            model = alias_cfg
        if weights is not None and backend == 'pytorch':
            from ..engine.hooks.strict_checkpoint_hook import check_checkpoint_file
            check_checkpoint_file(weights)   # missing / corrupt / not a checkpoint: one line
        if scope:
            init_default_scope(scope)
        super().__init__(model, weights, device, scope, show_progress=False)
        self.device = torch.device(device) if device is not None else next(
            (p.device for p in self.model.parameters()), torch.device('cpu'))
        self._init_detector(det_model, det_weights, det_cat_ids, device)
        self._image = None

    # ------------------------------------------------------------------------------ model
    def _init_model(self, cfg: Config, weights: Optional[str], device: str = 'cpu') -> torch.nn.Module:
        from mmpose.registry import MODELS
        if 'model' not in cfg:
            raise MeshInferencerError('the config has no model (give an mmpose-mpt config, e.g. '
                                      'configs/mpt/test_wo_finetune_toy.py)')
        mcfg = cfg.model
        if mcfg.get('type') != 'MeshEstimator':
            raise MeshInferencerError(f'the config\'s model is {mcfg.get("type")!r}, not an MPT '
                                      'MeshEstimator')
        if mcfg.get('backbone') is None and self.backend == 'pytorch':
            raise MeshInferencerError('the config\'s model has no pose network (a pre-training config?): '
                                      'images need backbone + neck, e.g. configs/mpt/test_wo_finetune_*.py '
                                      'or finetune_*.py')
        pre_cfg = mcfg.get('data_preprocessor') or {}
        if pre_cfg.get('type') != 'MeshImagePreprocessor':
            raise MeshInferencerError('the config\'s model.data_preprocessor must be a '
                                      'MeshImagePreprocessor (an image config)')
        if self.backend == 'onnxruntime':
            from .onnx_backend import OnnxMeshModel
            # the preprocessor holds what the ONNX graph does not: body model (faces, SMPL fit),
            # normalisation
            model = MODELS.build(pre_cfg).to(device).eval()
            self.onnx_model = OnnxMeshModel(self.onnx_file)
            self.preprocessor = model
            self.input_size = tuple(int(v) for v in self.onnx_model.input_size)
            self.dataset_meta = {}
            model.dataset_meta = {}
            return model
        mcfg = mcfg.copy()
        mcfg.pop('pretrained', None)
        model = MODELS.build(mcfg)
        if weights is not None:
            import re

            from mmengine.runner.checkpoint import _load_checkpoint

            from ..engine.hooks.strict_checkpoint_hook import StrictCheckpointHook, state_dict_of
            ckpt = _load_checkpoint(weights, map_location='cpu')
            # a checkpoint of another model is an error, not a warning (load_partial as in tools/test.py);
            # check() drops what an intended partial load leaves out
            partial = cfg.get('load_partial', False)
            StrictCheckpointHook().check(model, ckpt, weights, partial)
            state = {re.sub(r'^module\.', '', k): v for k, v in state_dict_of(ckpt, weights).items()}
            res = model.load_state_dict(state, strict=False)
            no_pose_net = [k for k in res.missing_keys if k.startswith(('backbone.', 'neck.'))]
            if no_pose_net and not mcfg.get('pose_net_checkpoint'):
                # a pre-trained MPT (head only) behind a random pose network would give meaningless
                # meshes without a word: say what is missing instead
                raise MeshInferencerError(
                    f'{weights}: holds no pose-network weights ({len(no_pose_net)} backbone / neck tensors, '
                    f'e.g. {no_pose_net[0]}; a pre-trained MPT head?) and the config gives no '
                    'model.pose_net_checkpoint: pass a fine-tuned checkpoint, or the 2D pose network with '
                    '--cfg-options model.pose_net_checkpoint=PATH')
            if res.missing_keys:
                print_log(f'MeshInferencer: {weights}: partial load (load_partial={partial!r}), '
                          f'{len(res.missing_keys)} model tensors not in the checkpoint keep their initial '
                          f'values (e.g. {res.missing_keys[0]})', logger='current', level=logging.WARNING)
            model.dataset_meta = ckpt.get('meta', {}).get('dataset_meta', {}) or {}
        else:
            print_log('MeshInferencer: no weights given: the model has random weights', logger='current',
                      level=logging.WARNING)
            model.dataset_meta = {}
        model = model.to(device).eval()
        self.preprocessor = model.data_preprocessor
        self.input_size = tuple(int(v) for v in self._crop_size(cfg))
        return model

    @staticmethod
    def _crop_size(cfg: Config) -> Tuple[int, int]:
        """(H, W) of the crops: the image test pipeline's MeshImageCrop, else 224 x 224."""
        try:
            for t in cfg.test_dataloader.dataset.pipeline:
                if t.get('type') == 'MeshImageCrop':
                    s = t.get('input_size', (224, 224))
                    s = (s, s) if np.isscalar(s) else s
                    return int(s[1]), int(s[0])
        except (AttributeError, KeyError, TypeError):
            pass
        return 224, 224

    def _init_pipeline(self, cfg: Config):
        # crops are cut in preprocess_single (all boxes of an image at once); no per-box Compose
        return None

    def _init_visualizer(self, cfg: Config):
        from ..visualization.mesh_visualizer import MeshVisualizer
        return MeshVisualizer(name=f'mesh_inferencer_{id(self)}', render_backend=self.render_backend)

    def _init_collate(self, cfg: Config):
        return None

    @property
    def body_model(self):
        """The SMPL body model of the config's data preprocessor (faces, SMPL fits)."""
        return self.preprocessor.body_models[0]

    @property
    def faces(self) -> np.ndarray:
        return np.asarray(self.body_model.faces, np.int64)

    # ------------------------------------------------------------------------------ detector
    def _init_detector(self, det_model=None, det_weights=None, det_cat_ids=0, device=None) -> None:
        self.det_cat_ids = tuple(det_cat_ids) if isinstance(det_cat_ids, (list, tuple)) else (int(det_cat_ids), )
        if det_model in ('whole_image', 'whole-image'):
            self.detector = None
            return
        if det_model is None:
            from mmengine.utils import get_installed_path
            det_model = osp.join(get_installed_path('mmpose'), '.mim', DEFAULT_DET_CONFIG)
            if det_weights is None:
                name = osp.basename(DEFAULT_DET_WEIGHTS_URL)
                cands = [osp.join(REPO_ROOT, 'checkpoints', name),
                         osp.join(torch.hub.get_dir(), 'checkpoints', name)]
                det_weights = next((c for c in cands if osp.isfile(c)), None)
                if det_weights is None:
                    raise MeshModelNotFoundError(
                        f'no person-detector weights on this machine: download {DEFAULT_DET_WEIGHTS_URL} to '
                        f'{cands[0]} (nothing is downloaded automatically), or pass det_weights=<file>, '
                        "det_model='whole_image' (one person filling the image) or bboxes= per image")
        if not osp.isfile(det_model):
            raise MeshModelNotFoundError(f'{det_model}: detector config not found (an mmdet config file or '
                                         "'whole_image')")
        if det_weights is not None and not osp.isfile(det_weights):
            raise MeshModelNotFoundError(f'{det_weights}: detector checkpoint not found')
        from mmdet.apis import DetInferencer
        det_cfg = Config.fromfile(det_model)
        self.detector = DetInferencer(model=det_cfg, weights=det_weights, device=device,
                                      scope=det_cfg.get('default_scope', 'mmdet'), show_progress=False)
        init_default_scope(self.scope or 'mmpose')  # DetInferencer switched it to mmdet

    def detect(self, img: np.ndarray, bbox_thr: float, nms_thr: float) -> np.ndarray:
        """(N, 5) person boxes x1 y1 x2 y2 score of a BGR image (after the score threshold and NMS)."""
        if self.detector is None:
            h, w = img.shape[:2]
            return np.array([[0, 0, w, h, 1.0]], np.float32)
        from mmpose.evaluation.functional import nms
        res = self.detector(img, return_datasamples=True)['predictions'][0].pred_instances.cpu().numpy()
        init_default_scope(self.scope or 'mmpose')
        boxes = np.concatenate([res.bboxes, res.scores[:, None]], 1).astype(np.float32)
        keep = np.isin(res.labels, self.det_cat_ids) & (res.scores > bbox_thr)
        boxes = boxes[keep]
        if len(boxes):
            boxes = boxes[nms(boxes, nms_thr)]
        return boxes.reshape(-1, 5)

    # ------------------------------------------------------------------------------ inputs
    def _inputs_to_list(self, inputs) -> Iterable:
        self._video_input = False
        if isinstance(inputs, (str, os.PathLike)):
            path = os.fspath(inputs)
            if osp.isdir(path):
                images, others = list_image_files(path)
                if not images:
                    raise MeshInferencerError(f'{path}: the folder has no images (extensions '
                                              f'{", ".join(IMAGE_EXTENSIONS)}); {len(others)} other file(s)')
                if others:
                    print_log(f'{path}: skipping {len(others)} file(s) that are not images (e.g. '
                              f'{osp.basename(others[0])})', logger='current', level=logging.WARNING)
                return images
            if not osp.exists(path):
                raise MeshInferencerError(f'{path}: no such file or folder')
            if osp.splitext(path)[1].lower() in VIDEO_EXTENSIONS:
                return self._open_video(path)
            return [path]
        if isinstance(inputs, np.ndarray):
            return [inputs] if inputs.ndim in (2, 3) else list(inputs)   # (T, H, W, C): frames
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        raise MeshInferencerError(f'unsupported input {type(inputs).__name__}: give an image path, a folder, '
                                  "a video file, 'webcam[:id]', a numpy image or a list of those")

    def _open_video(self, path: str) -> _VideoFrames:
        import mmcv
        try:
            video = mmcv.VideoReader(path)
            ok = video.opened and video.frame_cnt > 0
        except Exception as e:  # noqa: BLE001 - mmcv asserts / cv2 raises: one line either way
            raise MeshInferencerError(f'{path}: cannot open the video ({type(e).__name__}: {e})') from None
        if not ok:
            raise MeshInferencerError(f'{path}: cannot open the video or it has no frames (corrupt file or a '
                                      'codec this OpenCV build lacks)')
        self._video_input = True
        self.video_info = dict(fps=video.fps or 25.0, name=osp.basename(path), writer=None, width=video.width,
                               height=video.height, predictions=[], frame=0)
        return _VideoFrames(video, path)

    def _tic(self, stage: str, t0: float, sync: bool = False) -> float:
        if sync and self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        t = time.perf_counter()
        self.timings[stage] += t - t0
        self.counts[stage] += 1
        return t

    def reset_timings(self) -> None:
        """Clear the per-stage seconds accumulated in ``timings`` (see :data:`STAGES`)."""
        self.timings.clear()
        self.counts.clear()

    def preprocess(self, inputs, batch_size: int = 1, bboxes: Optional[List] = None, bbox_thr: float = 0.3,
                   nms_thr: float = 0.3, **kwargs):
        """Yields (per-image data dict, [input]); all persons of an image form one batch."""
        if isinstance(bboxes, np.ndarray) and bboxes.ndim == 2:
            bboxes = [bboxes]          # one image's (N, 4) boxes given without the per-image list
        it = inputs
        if self.progress:
            from tqdm import tqdm
            total = len(inputs) if hasattr(inputs, '__len__') else None
            it = tqdm(inputs, total=total, unit='frame' if self._video_input else 'image', desc='MeshInferencer')
        for i, inp in enumerate(it):
            box = None
            if bboxes is not None and len(bboxes):
                if i >= len(bboxes):
                    raise MeshInferencerError(f'bboxes= gives boxes for {len(bboxes)} image(s), but input {i} '
                                              'has none (one (N, 4) array per image)')
                box = bboxes[i]
            yield self.preprocess_single(inp, index=i, bboxes=box, bbox_thr=bbox_thr, nms_thr=nms_thr), [inp]

    def preprocess_single(self, input, index: int, bboxes=None, bbox_thr: float = 0.3,
                          nms_thr: float = 0.3) -> dict:
        """Decode, find persons, crop.

        Returns:
            dict(img (H, W, 3) uint8 BGR, img_path, crops (N, S, S, 3) uint8 BGR, bboxes (N, 4),
            bbox_scores (N,), centers (N, 2), sides (N,)).
        """
        t0 = time.perf_counter()
        if isinstance(input, str):
            img_path = input
            img = load_image(input, max_pixels=self.max_image_pixels)
        else:
            img_path = (f'{index:06d}.jpg' if not self._video_input
                        else f'{osp.splitext(self.video_info["name"])[0]}_{index:06d}.jpg')
            img = load_image(input, where=f'input {index}', max_pixels=self.max_image_pixels)
        t0 = self._tic('decode', t0)
        if bboxes is not None:
            b = np.asarray(bboxes, np.float32)
            if b.size == 0:
                b = np.zeros((0, 5), np.float32)
            b = b.reshape(-1, b.shape[-1]) if b.ndim >= 1 else b
            if b.shape[-1] not in (4, 5) or not np.isfinite(b).all():
                raise MeshInferencerError(f'{img_path}: bboxes must be (N, 4) x1 y1 x2 y2 [or (N, 5) with '
                                          f'scores], finite pixels; got shape {np.shape(bboxes)}')
            if b.shape[1] == 4:
                b = np.concatenate([b, np.ones((len(b), 1), np.float32)], 1)
            boxes = b
        else:
            boxes = self.detect(img, bbox_thr, nms_thr)
        t0 = self._tic('detect', t0)
        center, side = crop_box_of_bbox(boxes[:, :4], BOX_PADDING)
        crops = self.crop(img, center, side)
        self._tic('crop', t0)
        return dict(img=img, img_path=img_path, crops=crops, bboxes=boxes[:, :4], bbox_scores=boxes[:, 4],
                    centers=center, sides=side, index=index)

    def crop(self, img: np.ndarray, center: np.ndarray, side: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 crops: MeshImageCrop's test-time warp (square box, no rotation)."""
        from ..datasets.transforms.mesh_image_crop import crop_warp_matrix
        size = self.input_size[0]
        out = np.zeros((len(center), size, size, 3), np.uint8)
        for k in range(len(center)):
            M = crop_warp_matrix(center[k], float(side[k]), 0.0, False, size)
            out[k] = cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out

    # ------------------------------------------------------------------------------ forward
    def normalise(self, crops: np.ndarray) -> torch.Tensor:
        """(N, S, S, 3) uint8 BGR → (N, 3, S, S) float32 on the model's device, normalised exactly as
        MeshImagePreprocessor does (BGR → RGB, (x - mean) / std)."""
        pre = self.preprocessor
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(pre.mean.device).permute(0, 3, 1, 2).float()
        if pre.bgr_to_rgb:
            x = x.flip(1)
        return (x - pre.mean) / pre.std

    def run_model(self, x: torch.Tensor) -> Dict[str, np.ndarray]:
        """One forward for all crops: ``vertices`` (N, V, 3) and ``keypoints_3d`` (N, J, 3) metres,
        root-relative (as MeshEstimator.predict), ``camera`` (N, 3) (s, tx, ty)."""
        t0 = time.perf_counter()
        if self.backend == 'onnxruntime':
            out = self.onnx_model(x.cpu().numpy().astype(np.float32))
            self._tic('head', t0)
            return dict(vertices=np.asarray(out['vertices'], np.float32),
                        keypoints_3d=np.asarray(out['keypoints_3d'], np.float32),
                        camera=np.asarray(out['camera'], np.float32))
        m = self.model
        with torch.no_grad():
            feats = m.extract_feat(x)
            t0 = self._tic('pose_net', t0, sync=True)
            preds = m.head(feats)
            verts = preds['vertices'].float()
            # the 17 Human3.6M joints regressed from the mesh, as MeshEstimator.predict gives them
            joints = (torch.matmul(m.h36m_regressor, verts) if m.h36m_regressor is not None
                      else preds['joints_3d'].float())
            out = dict(vertices=verts.cpu().numpy(), keypoints_3d=joints.cpu().numpy(),
                       camera=preds['camera'].float().cpu().numpy())
        self._tic('head', t0, sync=True)
        return out

    def forward(self, data: dict, fit_smpl: bool = False) -> List[PoseDataSample]:
        """Model + full-image camera (+ SMPL fit) for one image's persons → [PoseDataSample]."""
        if isinstance(data, tuple):    # (data, [input]) when called outside __call__
            data = data[0]
        img = data['img']
        h, w = img.shape[:2]
        focal = resolve_focal_length(self.focal_length, (w, h))
        pp = tuple(float(v) for v in (self.principal_point if self.principal_point is not None
                                      else default_principal_point((w, h))))
        n = len(data['crops'])
        sample = PoseDataSample(metainfo=dict(img_path=data['img_path'], ori_shape=(h, w), img_shape=(h, w),
                                              focal_length=focal, principal_point=pp, input_size=self.input_size))
        inst = InstanceData()
        if n == 0:
            note = f'{data["img_path"]}: no person detected'
            print_log(note + ' (empty result; try a lower bbox_thr, bboxes= or det_model="whole_image")',
                      logger='current', level=logging.WARNING)
            sample.set_metainfo(dict(note=note))
            nv = self.body_model.num_vertices
            for k, shape in (('bboxes', (4, )), ('bbox_scores', ()), ('camera', (3, )), ('transl', (3, )),
                             ('vertices', (nv, 3)), ('keypoints_3d', (17, 3)), ('keypoints', (17, 2)),
                             ('keypoint_scores', (17, ))):
                inst.set_field(np.zeros((0, ) + shape, np.float32), k)
            sample.pred_instances = inst
            self._image = img
            return [sample]
        x = self.normalise(data['crops'])
        out = self.run_model(x)
        t0 = time.perf_counter()
        T = crop_to_full_camera(out['camera'], data['centers'], data['sides'], (w, h), focal, pp)
        verts = out['vertices'] + T[:, None].astype(np.float32)
        joints = out['keypoints_3d'] + T[:, None].astype(np.float32)
        kp2d = project_points(joints, focal, pp).astype(np.float32)
        t0 = self._tic('camera', t0)
        inst.bboxes = np.asarray(data['bboxes'], np.float32)
        inst.bbox_scores = np.asarray(data['bbox_scores'], np.float32)
        inst.camera = out['camera']
        inst.transl = T.astype(np.float32)
        inst.vertices = verts
        inst.keypoints_3d = joints
        inst.keypoints = kp2d
        inst.keypoint_scores = np.ones(kp2d.shape[:2], np.float32)
        inst.crop_center = np.asarray(data['centers'], np.float32)
        inst.crop_side = np.asarray(data['sides'], np.float32)
        if fit_smpl:
            from .fit_smpl import fit_smpl as _fit
            fit = _fit(torch.from_numpy(out['vertices']).to(self.preprocessor.mean.device), self.body_model)
            fit = {k: v.detach().cpu().numpy() for k, v in fit.items()}
            inst.smpl_global_orient = fit['global_orient'].astype(np.float32)
            inst.smpl_body_pose = fit['body_pose'].astype(np.float32)
            inst.smpl_betas = fit['betas'].astype(np.float32)
            inst.smpl_transl = (fit['transl'] + T).astype(np.float32)     # camera frame
            inst.smpl_vertex_error = fit['vertex_error'].astype(np.float32)
            self._tic('fit', t0, sync=True)
        sample.pred_instances = inst
        self._image = img
        return [sample]

    # ------------------------------------------------------------------------------ outputs
    def visualize(self, inputs: list, preds: List[PoseDataSample], return_vis: bool = False, show: bool = False,
                  draw_bbox: bool = False, wait_time: float = 0, radius: int = 3, thickness: int = 1,
                  kpt_thr: float = 0.3, vis_out_dir: str = '', window_name: str = '',
                  black_background: bool = False, side_view: bool = False, alpha: float = 1.0,
                  **kwargs) -> List[np.ndarray]:
        """Meshes rendered over the image (+ a side view); RGB images as mmpose's visualizers return."""
        if not (return_vis or show or vis_out_dir):
            return []
        t0 = time.perf_counter()
        self.visualizer.set_faces(self.faces)
        self.visualizer.radius, self.visualizer.line_width = radius, thickness
        results = []
        for pred in preds:
            img = self._image[..., ::-1]        # RGB, mmpose's visualizer convention
            if black_background:
                img = np.zeros_like(img)
            img_name = osp.basename(pred.metainfo['img_path'])
            vis = self.visualizer.add_datasample(
                window_name or img_name, np.ascontiguousarray(img), pred, draw_gt=False, draw_bbox=draw_bbox,
                show=show, wait_time=1e-5 if self._video_input else wait_time, kpt_thr=kpt_thr,
                side_view=side_view, alpha=alpha)
            results.append(vis)
            if vis_out_dir:
                self.save_visualization(vis, vis_out_dir, img_name=img_name)
        self._tic('render', t0)
        return results if return_vis else []

    def prediction_dict(self, pred: PoseDataSample, save_vertices: bool = True) -> Dict[str, Any]:
        """One image's predictions as the arrays of :func:`~mmpose_mpt.apis.save_result_json`."""
        p = pred.pred_instances
        meta = pred.metainfo
        out = dict(img_path=meta['img_path'], image_size=[int(meta['ori_shape'][1]), int(meta['ori_shape'][0])],
                   focal_length=list(meta['focal_length']), principal_point=list(meta['principal_point']),
                   boxes=p.bboxes, box_scores=p.bbox_scores, keypoints=p.keypoints, keypoint_scores=p.keypoint_scores,
                   keypoints_3d=p.keypoints_3d, camera=p.camera, transl=p.transl,
                   coordinates='camera frame of the image, metres: x right, y down, z forward; keypoints: px')
        if save_vertices:
            out['vertices'] = p.vertices
        if 'smpl_betas' in p:
            out['smpl'] = dict(global_orient=p.smpl_global_orient, body_pose=p.smpl_body_pose, betas=p.smpl_betas,
                               transl=p.smpl_transl, vertex_error=p.smpl_vertex_error)
        if 'note' in meta:
            out['note'] = meta['note']
        return out

    @staticmethod
    def split_persons(result: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Per-person dicts (mmpose's ``split_instances`` style, JSON-serialisable lists)."""
        n = len(result['boxes'])
        persons = []
        for k in range(n):
            d = dict(bbox=result['boxes'][k].tolist(), bbox_score=float(result['box_scores'][k]),
                     keypoints=result['keypoints'][k].tolist(), keypoint_scores=result['keypoint_scores'][k].tolist(),
                     keypoints_3d=result['keypoints_3d'][k].tolist(), camera=result['camera'][k].tolist(),
                     transl=result['transl'][k].tolist())
            if 'vertices' in result:
                d['vertices'] = result['vertices'][k].tolist()
            if 'smpl' in result:
                d['smpl'] = {key: (v[k].tolist() if np.ndim(v[k]) else float(v[k]))
                             for key, v in result['smpl'].items()}
            persons.append(d)
        return persons

    def postprocess(self, preds: List[PoseDataSample], visualization: List[np.ndarray], return_datasample=None,
                    return_datasamples: bool = False, pred_out_dir: str = '', export: Optional[str] = None,
                    save_vertices: bool = True) -> dict:
        """``{'predictions': [per image: list of per-person dicts | PoseDataSample], 'visualization': [...]}``;
        with ``pred_out_dir``: ``<stem>.json`` per image (:func:`~mmpose_mpt.apis.save_result_json`; video
        frames ``<video stem>/<frame:06d>.json``) and with ``export='obj'|'ply'``
        ``<stem>_person<k>.<ext>`` per person (camera coordinates)."""
        from .mesh_export import save_obj, save_ply, save_result_json
        if return_datasample is not None:
            return_datasamples = return_datasample
        if export not in (None, '', 'obj', 'ply'):
            raise MeshInferencerError(f"export must be 'obj', 'ply' or None, got {export!r}")
        if export and not pred_out_dir:
            raise MeshInferencerError('export= needs pred_out_dir= (where the mesh files go)')
        t0 = time.perf_counter()
        result = defaultdict(list)
        result['visualization'] = visualization
        for pred in preds:
            d = self.prediction_dict(pred, save_vertices)
            result['predictions'].append(pred if return_datasamples else self.split_persons(d))
            if pred_out_dir:
                stem = osp.splitext(osp.basename(pred.metainfo['img_path']))[0]
                out_dir = pred_out_dir
                if self._video_input:
                    out_dir = osp.join(pred_out_dir, osp.splitext(self.video_info['name'])[0])
                    frame = self.video_info.setdefault('frame', 0)   # webcam info has no counter
                    stem = f'{frame:06d}'
                    self.video_info['frame'] = frame + 1
                json_path = save_result_json(osp.join(out_dir, f'{stem}.json'), d)
                files = [json_path]
                if export:
                    writer = save_obj if export == 'obj' else save_ply
                    for k in range(len(d['boxes'])):
                        files.append(writer(osp.join(out_dir, f'{stem}_person{k}.{export}'),
                                            pred.pred_instances.vertices[k], self.faces))
                pred.set_metainfo(dict(output_files=files))
        self._tic('export', t0)
        return result

    def _finalize_video_processing(self, pred_out_dir: str = '') -> None:
        # per-frame JSON files are written as the frames come (a mesh per person per frame is too
        # large for mmpose's single video JSON); only the video writer is left to close
        if self.video_info.get('writer') is not None:
            self.video_info['writer'].release()
            print_log(f'the output video has been saved at {self.video_info["output_file"]}', logger='current',
                      level=logging.INFO)
            self.video_info['writer'] = None
