"""MeshVisualizationHook: predicted meshes over the validation / test crops, to the visualizer's backends.

mmpose's ``PoseVisualizationHook`` draws 2D keypoints; this is its mesh counterpart. Every ``interval``
iterations of validation / test, the first ``max_samples`` samples of the batch are drawn: the crop with
the predicted mesh rendered through the crop's own perspective camera (the weak-perspective camera made
perspective by :func:`~mmpose_mpt.visualization.crop_camera_vertices`), and a side view with the ground-
truth mesh (green) next to the prediction when the sample has one. The drawing goes to
``runner.visualizer`` (``add_image``): with ``vis_backends=[dict(type='LocalVisBackend'),
dict(type='TensorboardVisBackend')]`` in the config it is saved under the run's ``vis_data`` and in
TensorBoard.

Config::

    custom_hooks = [dict(type='MeshVisualizationHook', interval=50, max_samples=4)]
"""
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmpose.registry import HOOKS


@HOOKS.register_module()
class MeshVisualizationHook(Hook):
    """Draw predicted meshes during validation / test.

    Args:
        enable: off switch (keeps the hook in configs).
        interval: draw every ``interval``-th iteration of each val / test loop.
        max_samples: samples per drawn batch (stacked vertically into one image).
        side_view: add the side view (prediction, and ground truth when present).
        render_backend: see :func:`~mmpose_mpt.visualization.render_meshes`.
        out_dir: also write PNGs there (besides the visualizer's backends); None: backends only.
    """

    priority = 'NORMAL'

    def __init__(self, enable: bool = True, interval: int = 50, max_samples: int = 4, side_view: bool = True,
                 render_backend: str = 'auto', out_dir: Optional[str] = None) -> None:
        if interval < 1 or max_samples < 1:
            raise ValueError(f'MeshVisualizationHook: interval and max_samples must be >= 1, got {interval}, '
                             f'{max_samples}')
        self.enable, self.interval, self.max_samples = bool(enable), int(interval), int(max_samples)
        self.side_view, self.render_backend, self.out_dir = bool(side_view), render_backend, out_dir
        self._drawer = None

    def _faces(self, runner) -> Optional[np.ndarray]:
        from mmengine.model import is_model_wrapper
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        pre = getattr(model, 'data_preprocessor', None)
        bms = getattr(pre, 'body_models', None)
        return None if not bms else np.asarray(bms[0].faces, np.int64)

    def draw(self, inputs: Sequence, outputs: Sequence, faces: np.ndarray) -> np.ndarray:
        """Crops (B, 3, S, S) uint8 BGR (as packed) + MeshEstimator predictions → one BGR image."""
        from ...visualization.mesh_visualizer import MeshVisualizer, crop_camera_vertices
        if self._drawer is None:   # a drawer only: the runner's visualizer holds the backends
            self._drawer = MeshVisualizer(name=f'mesh_visualization_hook_{id(self)}',
                                          render_backend=self.render_backend)
        self._drawer.set_faces(faces)
        rows = []
        for img, ds in list(zip(inputs, outputs))[:self.max_samples]:
            crop = np.asarray(img.cpu().numpy() if hasattr(img, 'cpu') else img)
            if crop.ndim != 3 or crop.shape[0] != 3:
                continue   # heatmap inputs (pre-training) have no image to draw on
            crop = np.ascontiguousarray(crop.transpose(1, 2, 0)).astype(np.uint8)
            p = ds.pred_instances
            verts, f, c = crop_camera_vertices(np.asarray(p.vertices), np.asarray(p.camera), crop.shape[1])
            extra = []
            gt = getattr(ds, 'gt_instances', None)
            if gt is not None and 'vertices' in gt and float(np.asarray(gt.get('has_vertices', 1)).reshape(-1)[0]):
                # the ground truth at the prediction's position, for the side-by-side shape comparison
                shift = verts[0].mean(0) - np.asarray(gt.vertices)[0].mean(0)
                extra = [np.asarray(gt.vertices)[0] + shift]
            rows.append(self._drawer.draw_meshes(crop, list(verts), f, c, side_view=self.side_view,
                                                 extra_side=extra))
        return np.concatenate(rows, 0) if rows else None

    def _after_iter(self, runner, batch_idx: int, data_batch, outputs, mode: str) -> None:
        if not self.enable or batch_idx % self.interval != 0 or not outputs:
            return
        faces = self._faces(runner)
        if faces is None or not isinstance(data_batch, dict) or 'inputs' not in data_batch:
            return
        drawn = self.draw(data_batch['inputs'], outputs, faces)
        if drawn is None:
            return
        name = f'{mode}_mesh_{batch_idx:06d}'
        runner.visualizer.add_image(name, np.ascontiguousarray(drawn[..., ::-1]), step=runner.iter)
        if self.out_dir is not None:
            import os.path as osp

            import mmcv
            mmcv.imwrite(drawn, osp.join(self.out_dir, f'{name}_iter{runner.iter}.png'))

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._after_iter(runner, batch_idx, data_batch, outputs, 'val')

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._after_iter(runner, batch_idx, data_batch, outputs, 'test')
