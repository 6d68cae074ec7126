"""Export a MeshEstimator's image path (pose network + MPT head) to one ONNX file.

The exported graph maps normalised crops to exactly the quantities :meth:`MeshEstimator.predict`
puts into ``pred_instances`` (see :data:`OUTPUT_NAMES`), with a dynamic batch axis; detection,
cropping and normalisation stay outside (they are data-dependent Python, which ``torch.export`` cannot
trace). The file carries metadata (``metadata_props``) that :class:`OnnxMeshModel` checks and uses: the
crop size, the preprocessor's mean / std / channel order and the output names.

Exporter: torch 2.13's default ``torch.onnx.export(dynamo=True)`` (torch.export + onnxscript) with
``external_data=False`` so that the weights stay in the one file. The legacy TorchScript exporter is
not offered: with a dynamic batch it loses the pose maps' spatial size after the resize to the head's
input size and then cannot export the head's adaptive pooling (verified on the toy config), and
exporting with a fixed batch bakes that batch into the head's reshapes.
"""
import json
import os
import os.path as osp
import warnings
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..utils.cli import MPTUserError

__all__ = ['export_onnx', 'config_crop_size', 'OnnxExportError', 'MeshOnnxWrapper', 'OUTPUT_NAMES',
           'FORMAT_KEY', 'FORMAT_VERSION', 'INPUT_NAME']

INPUT_NAME = 'crops'
# (name, shape) of every output, in graph order. vertex_root only when the model has the Human3.6M
# regressor (as in MeshEstimator.predict).
OUTPUT_NAMES = ('vertices', 'keypoints_3d', 'keypoints_3d_query', 'camera', 'keypoints', 'vertex_root')
FORMAT_KEY = 'mmpose_mpt.format'
FORMAT_VERSION = 'mesh-estimator-v1'


class OnnxExportError(MPTUserError, ValueError):
    """A model or an option that cannot be exported (the message says why)."""


class MeshOnnxWrapper(nn.Module):
    """Tensor-in / tensors-out copy of :meth:`MeshEstimator.predict` (no data samples, no numpy).

    Forward: ``crops`` (B, 3, H, W) float32 normalised → a tuple in :data:`OUTPUT_NAMES` order:
    ``vertices`` (B, V, 3) metres, root-relative camera frame, exactly the head's full-mesh output;
    ``keypoints_3d`` (B, 17, 3) the Human3.6M joints regressed from the mesh (or (B, J, 3) the joint
    queries without a regressor); ``keypoints_3d_query`` (B, J, 3); ``camera`` (B, 3) weak
    perspective (s, tx, ty); ``keypoints`` (B, 14, 2) the LSP-14 joints projected into crop pixels;
    ``vertex_root`` (B, 3) the regressed pelvis (only with a regressor).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.has_root = getattr(model, 'h36m_regressor', None) is not None

    def forward(self, crops: Tensor) -> Tuple[Tensor, ...]:
        from ..body_models.joint_regressors import H36M_J17_TO_J14
        from ..cameras import weak_perspective_project
        model = self.model
        preds = model.head(model.extract_feat(crops))
        verts = preds['vertices'].float()
        query = preds['joints_3d'].float()
        cam = preds['camera'].float()
        if self.has_root:
            h36m = torch.matmul(model.h36m_regressor, verts)                      # (B, 17, 3)
            joints14 = h36m[:, H36M_J17_TO_J14]
            joints = h36m
        else:
            joints14 = joints = query
        h, w = crops.shape[-2], crops.shape[-1]
        kp2d = weak_perspective_project(joints14, cam)
        kp2d = (kp2d + 1) * kp2d.new_tensor([w / 2, h / 2])
        out = (verts, joints, query, cam, kp2d)
        if self.has_root:
            out = out + (joints[:, 0], )
        return out


def config_crop_size(cfg, default: Tuple[int, int] = (224, 224)) -> Tuple[int, int]:
    """(H, W) of the ``MeshImageCrop`` in a config's test pipeline (its ``input_size`` is (W, H) or an
    int), else ``default``."""
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return default
    for t in pipeline or ():
        if t.get('type') == 'MeshImageCrop' and t.get('input_size') is not None:
            size = t['input_size']
            if isinstance(size, int):
                return (size, size)
            return (int(size[1]), int(size[0]))
    return default


def _preprocessor_norm(model: nn.Module) -> Dict[str, object]:
    pre = getattr(model, 'data_preprocessor', None)
    mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
    if not (torch.is_tensor(mean) and torch.is_tensor(std)) or mean.numel() != 3 or std.numel() != 3:
        raise OnnxExportError(f'export_onnx: the model\'s data preprocessor ({type(pre).__name__}) has no '
                              '3-channel mean/std; export a model built from an image config '
                              '(MeshImagePreprocessor, e.g. configs/mpt/test_wo_finetune_toy.py)')
    return {'mean': [float(v) for v in mean.reshape(-1)], 'std': [float(v) for v in std.reshape(-1)],
            'bgr_to_rgb': bool(getattr(pre, 'bgr_to_rgb', True))}


def export_onnx(model: nn.Module,
                out_file: str,
                input_size: Sequence[int] = (224, 224),
                opset: Optional[int] = None,
                max_batch: int = 1024) -> str:
    """Export pose network + MPT head of ``model`` to one ONNX file (dynamic batch axis).

    Args:
        model: a :class:`MeshEstimator` with a pose network (``backbone``), built from an image config.
        out_file: the ``.onnx`` file to write (its folder is created).
        input_size: (H, W) of the crops (the pipeline's ``MeshImageCrop`` size; 224 x 224 in the paper).
        opset: ONNX opset; None: the exporter's default (18 with torch 2.13).
        max_batch: upper bound of the dynamic batch axis.

    Returns:
        ``out_file``.
    """
    if getattr(model, 'backbone', None) is None or not hasattr(model, 'head'):
        raise OnnxExportError('export_onnx: the model has no pose network (backbone); only the image '
                              'path (crop -> pose net -> head) is exported. Build the model from an '
                              'image config such as configs/mpt/test_wo_finetune_toy.py')
    try:
        import onnx
        import onnxscript  # noqa: F401  torch.onnx.export(dynamo=True) needs it
    except ImportError as e:
        raise OnnxExportError(f'export_onnx needs the onnx and onnxscript packages ({e}; pip install -c '
                              'requirements/constraints.txt -r requirements/onnx.txt)') from e
    h, w = (int(v) for v in input_size)
    if h <= 0 or w <= 0:
        raise OnnxExportError(f'export_onnx: input_size must be positive (H, W), got {input_size}')
    norm = _preprocessor_norm(model)
    out_file = str(out_file)
    folder = osp.dirname(osp.abspath(out_file))
    os.makedirs(folder, exist_ok=True)

    wrapper = MeshOnnxWrapper(model).eval()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    # batch 2 as the example: torch.export specialises a dimension traced at size 1
    example = torch.zeros(2, 3, h, w, device=device)
    names = list(OUTPUT_NAMES if wrapper.has_root else OUTPUT_NAMES[:-1])
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')   # exporter chatter (deprecations, torchvision ops)
            batch = torch.export.Dim('batch', min=1, max=int(max_batch))
            # dynamic_shapes is keyed by the forward's argument name
            torch.onnx.export(wrapper, (example, ), out_file, input_names=[INPUT_NAME],
                              output_names=names, opset_version=opset, dynamo=True,
                              dynamic_shapes={'crops': {0: batch}}, external_data=False,
                              optimize=True, verbose=False)
    finally:
        model.train(was_training)

    proto = onnx.load(out_file)
    meta = {
        FORMAT_KEY: FORMAT_VERSION,
        'mmpose_mpt.input_size': json.dumps([h, w]),
        'mmpose_mpt.mean': json.dumps(norm['mean']),
        'mmpose_mpt.std': json.dumps(norm['std']),
        'mmpose_mpt.bgr_to_rgb': json.dumps(norm['bgr_to_rgb']),
        'mmpose_mpt.outputs': json.dumps(names),
        'mmpose_mpt.num_vertices': json.dumps(int(model.head.num_vertices[-1])),
        'mmpose_mpt.exporter': f'torch {torch.__version__} dynamo',
    }
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = 'mmpose_mpt'
    onnx.save_model(proto, out_file)   # one file: the weights stay inline (< 2 GB)
    data = out_file + '.data'
    if osp.exists(data):               # some exporter versions write a sidecar anyway
        os.remove(data)
    return out_file
