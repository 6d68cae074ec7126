"""MeshVisualizer: predicted meshes drawn over the image in its own perspective camera (+ a side view).

Registered in mmpose's ``VISUALIZERS``; ``add_datasample`` follows mmpose's ``PoseLocalVisualizer``
(RGB image in, RGB drawing out, ``show`` / ``out_file`` / ``step``; without ``out_file`` the drawing goes
to the visualizer's ``vis_backends``: ``LocalVisBackend``, ``TensorboardVisBackend``, ...). Rendering
is :func:`~mmpose_mpt.visualization.scene_renderer.render_meshes` (pyrender EGL / OSMesa, else the numpy
painter): every person in one camera, occluding each other by depth.

The data sample's ``pred_instances.vertices`` (N, V, 3) must be in the image's camera frame (metres, x
right, y down, z forward) and its metainfo must hold ``focal_length`` (fx, fy) and ``principal_point``
(cx, cy) in pixels — what :class:`~mmpose_mpt.apis.MeshInferencer` produces; :func:`crop_sample_to_camera`
makes such a sample from MeshEstimator's crop predictions (root-relative vertices + weak-perspective
camera), as the validation hook does.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.visualization import Visualizer

from ..utils.mmpose_compat import ensure_mmpose_visualization_importable

ensure_mmpose_visualization_importable()
from mmpose.registry import VISUALIZERS  # noqa: E402

__all__ = ['MeshVisualizer', 'crop_camera_vertices']

PRED_COLORS = ((230, 190, 170), (150, 160, 240), (160, 220, 160), (220, 160, 200), (140, 210, 230))  # BGR
GT_COLOR = (120, 200, 120)   # BGR


def crop_camera_vertices(vertices: np.ndarray, camera: np.ndarray, crop_size: int
                         ) -> Tuple[np.ndarray, Tuple[float, float], Tuple[float, float]]:
    """Root-relative meshes + weak-perspective cameras of S x S crops → camera-frame meshes in the
    crop's own perspective camera (the full-image formula with the crop as the image).

    Args:
        vertices: (N, V, 3) metres, root-relative; camera: (N, 3) (s, tx, ty); crop_size: S.

    Returns:
        (vertices (N, V, 3) camera frame, (f, f), (cx, cy)).
    """
    from ..apis.full_image_camera import crop_to_full_camera, default_focal_length
    n = len(vertices)
    S = float(crop_size)
    cam = np.asarray(camera, np.float64).reshape(n, 3).copy()
    cam[:, 0] = np.maximum(cam[:, 0], 1e-3)    # an untrained head's scale can be <= 0: keep it drawable
    f = default_focal_length((S, S))
    T = crop_to_full_camera(cam, np.full((n, 2), S / 2), np.full(n, S), (S, S), f, (S / 2, S / 2))
    return np.asarray(vertices, np.float64) + T[:, None], f, (S / 2, S / 2)


@VISUALIZERS.register_module()
class MeshVisualizer(Visualizer):
    """Draw MPT meshes (see the module docstring).

    Args:
        name: the visualizer's instance name.
        image: an initial image (RGB) or None.
        vis_backends: mmengine visualization backends (e.g. ``[dict(type='LocalVisBackend')]``,
            ``dict(type='TensorboardVisBackend')``).
        save_dir: where the backends save.
        faces: (F, 3) mesh faces (SMPL's); the inferencer / hook set them with :meth:`set_faces`.
        render_backend: ``'auto'`` | ``'pyrender-egl'`` | ``'pyrender-osmesa'`` | ``'painter'``.
        alpha: mesh opacity over the image.
        side_view: also draw all meshes seen from the camera's right, next to the image.
        bbox_color: BGR of the person boxes (``draw_bbox``).
        radius, line_width: keypoint / box drawing sizes (mmpose's names).
    """

    def __init__(self, name: str = 'visualizer', image: Optional[np.ndarray] = None,
                 vis_backends: Optional[list] = None, save_dir: Optional[str] = None,
                 faces: Optional[np.ndarray] = None, render_backend: str = 'auto', alpha: float = 1.0,
                 side_view: bool = False, bbox_color: Tuple[int, int, int] = (0, 255, 0), radius: int = 3,
                 line_width: int = 1) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir)
        self.faces = None if faces is None else np.asarray(faces, np.int64)
        self.render_backend = render_backend
        self.alpha, self.side_view = float(alpha), bool(side_view)
        self.bbox_color = tuple(int(c) for c in bbox_color)
        self.radius, self.line_width = radius, line_width
        self.dataset_meta = {}

    def set_faces(self, faces: np.ndarray) -> None:
        self.faces = np.asarray(faces, np.int64)

    def set_dataset_meta(self, dataset_meta: dict, *args, **kwargs) -> None:
        """mmpose API compatibility (meshes need no keypoint colours)."""
        self.dataset_meta = dict(dataset_meta or {})

    def draw_meshes(self, image_bgr: np.ndarray, vertices: Sequence[np.ndarray], focal_length, principal_point,
                    colors=None, alpha: Optional[float] = None, side_view: Optional[bool] = None,
                    boxes: Optional[np.ndarray] = None, extra_side: Sequence[np.ndarray] = (),
                    extra_color: Tuple[int, int, int] = GT_COLOR) -> np.ndarray:
        """(H, W, 3) uint8 BGR → BGR drawing (width + H * 3 / 4 with the side view).

        ``extra_side``: more camera-frame meshes drawn only in the side view (e.g. ground truth)."""
        from .scene_renderer import render_meshes, render_side_view
        if self.faces is None:
            raise ValueError('MeshVisualizer: no faces set (set_faces(body_model.faces))')
        verts = [np.asarray(v, np.float64) for v in vertices]
        n = len(verts)
        colors = list(colors) if colors is not None else [PRED_COLORS[k % len(PRED_COLORS)] for k in range(n)]
        out = image_bgr
        if n:
            out = render_meshes(image_bgr, verts, self.faces, tuple(focal_length), tuple(principal_point),
                                colors=colors, alpha=self.alpha if alpha is None else float(alpha),
                                backend=self.render_backend)
        else:
            out = image_bgr.copy()
        if boxes is not None:
            for b in np.asarray(boxes).reshape(-1, 4):
                cv2.rectangle(out, (int(round(b[0])), int(round(b[1]))), (int(round(b[2])), int(round(b[3]))),
                              self.bbox_color, max(1, int(self.line_width)), cv2.LINE_AA)
        if self.side_view if side_view is None else side_view:
            h = out.shape[0]
            size = (max(32, int(round(h * 0.75))), h)
            all_v = verts + [np.asarray(v, np.float64) for v in extra_side]
            side = render_side_view(all_v, self.faces, size,
                                    colors=colors + [extra_color] * len(extra_side),
                                    backend=self.render_backend) if all_v else \
                np.full((size[1], size[0], 3), 255, np.uint8)
            out = np.concatenate([out, side], 1)
        return out

    def add_datasample(self, name: str, image: np.ndarray, data_sample, draw_gt: bool = False,
                       draw_pred: bool = True, draw_heatmap: bool = False, draw_bbox: bool = False,
                       show_kpt_idx: bool = False, skeleton_style: str = 'mmpose', show: bool = False,
                       wait_time: float = 0, out_file: Optional[str] = None, kpt_thr: float = 0.3,
                       step: int = 0, side_view: Optional[bool] = None, alpha: Optional[float] = None,
                       **kwargs) -> np.ndarray:
        """Draw a data sample's meshes over ``image`` (RGB, as mmpose) → the RGB drawing.

        ``draw_gt`` adds ``gt_instances.vertices`` (camera frame, same camera) to the side view. Shown with
        ``show``, written to ``out_file``, else added to the backends under ``name`` at ``step``.
        """
        bgr = np.ascontiguousarray(np.asarray(image)[..., ::-1])
        meta = data_sample.metainfo
        if 'focal_length' not in meta or 'principal_point' not in meta:
            raise ValueError('MeshVisualizer.add_datasample: the data sample needs metainfo focal_length and '
                             'principal_point (camera-frame vertices; see crop_camera_vertices)')
        verts, boxes = [], None
        if draw_pred and 'pred_instances' in data_sample:
            p = data_sample.pred_instances
            verts = list(np.asarray(p.vertices)) if 'vertices' in p else []
            if draw_bbox and 'bboxes' in p:
                boxes = np.asarray(p.bboxes)
        extra = []
        if draw_gt and 'gt_instances' in data_sample and 'vertices' in data_sample.gt_instances:
            extra = list(np.asarray(data_sample.gt_instances.vertices))
        drawn = self.draw_meshes(bgr, verts, meta['focal_length'], meta['principal_point'], alpha=alpha,
                                 side_view=side_view, boxes=boxes, extra_side=extra)
        rgb = np.ascontiguousarray(drawn[..., ::-1])
        self.set_image(rgb)
        if show:
            self.show(rgb, win_name=name, wait_time=wait_time)
        if out_file is not None:
            import mmcv
            mmcv.imwrite(drawn, out_file)
        else:
            self.add_image(name, rgb, step)
        return self.get_image()
