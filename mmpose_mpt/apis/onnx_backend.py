"""onnxruntime backend: run a file written by :func:`export_onnx` and return MeshEstimator's predictions.

``OnnxMeshModel(file)(crops)`` returns, as numpy float32 arrays with a leading batch axis, the same
quantities :meth:`MeshEstimator.predict` puts into each sample's ``pred_instances`` (stacked over the
batch), under the same names, plus two short aliases:

=====================  ==============  ==========================================================
key                    shape           meaning (= ``pred_instances.<key>`` of MeshEstimator.predict)
=====================  ==============  ==========================================================
``vertices``           (B, V, 3)       full mesh, metres, camera frame, root-relative as the head
                                       predicts it (**not** minus ``vertex_root``; subtract it for
                                       METRO's pelvis-centred MPVE convention)
``keypoints_3d``       (B, 17, 3)      Human3.6M joints regressed from ``vertices`` (B, J, 3) joint
                                       queries when the model has no regressor)
``keypoints_3d_query`` (B, J, 3)       the joint queries' own 3D joints (LSP-14)
``camera``             (B, 3)          weak perspective (s, tx, ty), normalised crop coordinates
``keypoints``          (B, 14, 2)      LSP-14 joints projected into crop pixels
``keypoint_scores``    (B, 14)         ones (as predict)
``vertex_root``        (B, 3)          regressed pelvis = ``keypoints_3d[:, 0]`` (only with a regressor)
``joints``             (B, 17, 3)      alias of ``keypoints_3d``
=====================  ==============  ==========================================================

The crops must be normalised exactly as :class:`MeshImagePreprocessor` does (BGR → RGB, minus mean,
divided by std); :meth:`OnnxMeshModel.preprocess` does it for uint8 BGR crops from the file's metadata.
"""
import json
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from ..utils.cli import MPTUserError
from .onnx_export import FORMAT_KEY, FORMAT_VERSION, INPUT_NAME

__all__ = ['OnnxMeshModel', 'OnnxBackendError']


class OnnxBackendError(MPTUserError, ValueError):
    """onnxruntime missing, a file that is not one of our exports, or input of the wrong shape."""


class OnnxMeshModel:
    """A mesh model exported by :func:`export_onnx`, run with onnxruntime.

    Args:
        onnx_file: path of the ``.onnx`` file.
        providers: onnxruntime execution providers (default: ``['CPUExecutionProvider']``; e.g.
            ``['CUDAExecutionProvider', 'CPUExecutionProvider']`` with onnxruntime-gpu).
        num_threads: onnxruntime's intra-op threads (default: its own choice, one per core).

    Attributes:
        input_size: (H, W) crop size of the file.
        mean, std: (3,) the normalisation (RGB order after ``bgr_to_rgb``), from the exported config.
        bgr_to_rgb: whether crops are flipped from BGR to RGB before normalising.
        output_names: the graph's outputs (see the module docstring).
    """

    def __init__(self, onnx_file: str, providers: Optional[List] = None,
                 num_threads: Optional[int] = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise OnnxBackendError('the onnxruntime backend needs the onnxruntime package (pip install '
                                   '-c requirements/constraints.txt -r requirements/onnx.txt)') from e
        onnx_file = str(onnx_file)
        if not osp.isfile(onnx_file):
            raise OnnxBackendError(f'{onnx_file}: ONNX file not found (write one with tools/export_onnx.py '
                                   'CONFIG CHECKPOINT --out FILE)')
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
        try:
            self.session = ort.InferenceSession(onnx_file, sess_options=opts,
                                                providers=providers or ['CPUExecutionProvider'])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own (untyped) errors
            raise OnnxBackendError(f'{onnx_file}: onnxruntime cannot load it: '
                                   f'{" ".join(str(e).split())[:300]}') from e
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(FORMAT_KEY) != FORMAT_VERSION:
            raise OnnxBackendError(f'{onnx_file}: not a mesh model exported by mmpose_mpt (metadata '
                                   f'{FORMAT_KEY}={meta.get(FORMAT_KEY)!r}, expected {FORMAT_VERSION!r}); '
                                   'export it with tools/export_onnx.py')
        try:
            self.input_size = tuple(int(v) for v in json.loads(meta['mmpose_mpt.input_size']))
            self.mean = np.asarray(json.loads(meta['mmpose_mpt.mean']), np.float32)
            self.std = np.asarray(json.loads(meta['mmpose_mpt.std']), np.float32)
            self.bgr_to_rgb = bool(json.loads(meta['mmpose_mpt.bgr_to_rgb']))
            self.output_names = list(json.loads(meta['mmpose_mpt.outputs']))
            self.num_vertices = int(json.loads(meta['mmpose_mpt.num_vertices']))
        except (KeyError, ValueError, TypeError) as e:
            raise OnnxBackendError(f'{onnx_file}: incomplete mmpose_mpt metadata ({e})') from e
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            raise OnnxBackendError(f'{onnx_file}: expected one input named {INPUT_NAME!r}, got '
                                   f'{[i.name for i in inputs]}')
        graph_outputs = [o.name for o in self.session.get_outputs()]
        if graph_outputs != self.output_names:
            raise OnnxBackendError(f'{onnx_file}: outputs {graph_outputs} do not match its metadata '
                                   f'{self.output_names}')
        self.onnx_file = onnx_file

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """uint8 BGR crops (B, 3, H, W) (as PackMeshInputs packs them) → normalised float32 crops."""
        x = np.asarray(crops).astype(np.float32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise OnnxBackendError(f'{self.onnx_file}: crops must be (B, 3, H, W), got {x.shape}')
        if self.bgr_to_rgb:
            x = x[:, ::-1]
        return np.ascontiguousarray((x - self.mean[None, :, None, None]) / self.std[None, :, None, None])

    def __call__(self, crops: np.ndarray) -> Dict[str, np.ndarray]:
        """Normalised crops (B, 3, H, W) float → predictions (see the module docstring)."""
        x = np.asarray(crops)
        h, w = self.input_size
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (h, w) or x.shape[0] < 1:
            raise OnnxBackendError(f'{self.onnx_file}: crops must be (B, 3, {h}, {w}) (B >= 1), got '
                                   f'{tuple(x.shape)}')
        if x.dtype == np.uint8:
            raise OnnxBackendError(f'{self.onnx_file}: crops are uint8; normalise them first '
                                   '(OnnxMeshModel.preprocess) as MeshImagePreprocessor does')
        if not np.issubdtype(x.dtype, np.floating):
            raise OnnxBackendError(f'{self.onnx_file}: crops must be float32, got {x.dtype}')
        x = np.ascontiguousarray(x, dtype=np.float32)
        outs = self.session.run(self.output_names, {INPUT_NAME: x})
        res = dict(zip(self.output_names, outs))
        res['keypoint_scores'] = np.ones(res['keypoints'].shape[:2], np.float32)
        res['joints'] = res['keypoints_3d']
        return res
