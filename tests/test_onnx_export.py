"""ONNX export of the image path (pose network + MPT head) and the onnxruntime backend.

The toy image config's model (configs/mpt/test_wo_finetune_toy.py: small HRNet + AEHigherResolutionNeck +
toy MPT head, seeded random weights, read-out weights enlarged so that the outputs depend on the crop)
is exported once; onnxruntime must reproduce MeshEstimator.predict's pred_instances within 1e-4 m at
batch sizes 1 and 3 from the same file.
"""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, cfg_options_args

# requirements/onnx.txt, installed by tools/setup_env.sh: a missing package is a failure, not a skip
import onnx  # noqa: E402

from mmpose_mpt.apis.onnx_backend import OnnxBackendError, OnnxMeshModel  # noqa: E402
from mmpose_mpt.apis.onnx_export import OnnxExportError, config_crop_size, export_onnx  # noqa: E402

CONFIG = osp.join(REPO, 'configs', 'mpt', 'test_wo_finetune_toy.py')
TOL = 1e-4
# torch.export + ONNX translation of the toy HRNet + head takes ~20 s alone, 40+ s on the shared 2 cores
SLOW_EXPORT = pytest.mark.slow


def _overrides(root: str) -> dict:
    bm = osp.join(root, 'body_models')
    h36m = osp.join(bm, 'J_regressor_h36m_correct.npy')
    sampling = osp.join(bm, 'mesh_downsampling.npz')
    return {'model.data_preprocessor.body_model.model_path': osp.join(bm, 'smpl'),
            'model.data_preprocessor.body_model.h36m_regressor': h36m,
            'model.data_preprocessor.mesh_sampler': sampling,
            'model.head.upsampling_init': sampling,
            'model.joint_regressor': h36m}


@pytest.fixture(scope='module')
def body_model_root(tmp_path_factory):
    from mmpose_mpt.body_models import make_toy_body_models
    root = str(tmp_path_factory.mktemp('onnx_toy'))
    make_toy_body_models(root)
    return root


def build_toy_model(root: str):
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS
    init_default_scope('mmpose')
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(_overrides(root))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():   # the init read-outs are ~0: make the mesh and camera depend on the crop
        model.head.coord_out.weight.normal_(std=0.05)
        model.head.camera_out.weight.normal_(std=0.05)
    return model, cfg


def _tool_cmd(root: str, checkpoint: str, out: str) -> list:
    return [sys.executable, osp.join(REPO, 'tools', 'export_onnx.py'), CONFIG, checkpoint, '--out', out,
            '--check', '--repeats', '1', '--cfg-options', *cfg_options_args(_overrides(root))]


@pytest.fixture(scope='module')
def exported(body_model_root, tmp_path_factory):
    """The module's one export (torch.export + onnxscript take ~20 s): by the tool, with ``--check``, from
    a checkpoint of the perturbed toy model. Returns (model, crop size, .onnx path, checkpoint, the
    tool's stdout)."""
    model, cfg = build_toy_model(body_model_root)
    out_dir = tmp_path_factory.mktemp('onnx')
    ckpt, path = str(out_dir / 'toy.pth'), str(out_dir / 'toy.onnx')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    res = subprocess.run(_tool_cmd(body_model_root, ckpt, path), cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return model, config_crop_size(cfg), path, ckpt, res.stdout


def _reference(model, x: torch.Tensor) -> dict:
    with torch.no_grad():
        samples = model.predict(x)
    fields = samples[0].pred_instances.keys()
    return {k: np.concatenate([s.pred_instances.get(k) for s in samples]) for k in fields}


@SLOW_EXPORT
@pytest.mark.parametrize('batch', [1, 3])
def test_onnxruntime_matches_pytorch_predict(exported, batch):
    model, size, path = exported[:3]
    runner = OnnxMeshModel(path)
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(batch))
    ref = _reference(model, x)
    got = runner(x.numpy())
    # every field of pred_instances, under the same name and shape
    assert set(ref) <= set(got), set(ref) - set(got)
    for k, v in ref.items():
        assert got[k].shape == v.shape, k
        assert got[k].dtype == np.float32, k
    for k in ('vertices', 'keypoints_3d', 'keypoints_3d_query', 'camera', 'vertex_root'):
        diff = np.abs(got[k] - ref[k]).max()
        assert diff <= TOL, (k, diff)
    assert np.abs(got['keypoints'] - ref['keypoints']).max() <= size[1] * TOL
    np.testing.assert_array_equal(got['joints'], got['keypoints_3d'])
    assert got['vertices'].shape == (batch, 6890, 3)
    # the outputs depend on the crop (else the parity would be trivially met)
    if batch == 3:
        assert np.abs(got['vertices'][0] - got['vertices'][1]).max() > 1e-3
        assert np.abs(got['camera'][0] - got['camera'][1]).max() > 1e-4


@SLOW_EXPORT
def test_file_is_one_file_with_dynamic_batch_and_metadata(exported):
    model, size, path = exported[:3]
    assert not osp.exists(path + '.data')
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value, 'the batch axis must be symbolic'
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta['mmpose_mpt.input_size']) == list(size)
    np.testing.assert_allclose(json.loads(meta['mmpose_mpt.mean']),
                               model.data_preprocessor.mean.flatten().tolist())
    np.testing.assert_allclose(json.loads(meta['mmpose_mpt.std']),
                               model.data_preprocessor.std.flatten().tolist())
    runner = OnnxMeshModel(path)
    assert runner.input_size == size and runner.bgr_to_rgb is True
    np.testing.assert_allclose(runner.mean, [123.675, 116.28, 103.53], rtol=1e-6)


@SLOW_EXPORT
def test_preprocess_normalises_like_the_data_preprocessor(exported):
    model, size, path = exported[:3]
    runner = OnnxMeshModel(path)
    crops = np.random.default_rng(0).integers(0, 256, (2, 3, *size), dtype=np.uint8)
    pre = model.data_preprocessor
    expect = (torch.from_numpy(crops).float().flip(1) - pre.mean) / pre.std
    np.testing.assert_allclose(runner.preprocess(crops), expect.numpy(), atol=1e-5)


@SLOW_EXPORT
def test_wrong_input_is_a_clear_error(exported):
    _, (h, w), path = exported[:3]
    runner = OnnxMeshModel(path)
    with pytest.raises(OnnxBackendError, match=rf'crops must be \(B, 3, {h}, {w}\).*\(1, 3, 100, 100\)'):
        runner(np.zeros((1, 3, 100, 100), np.float32))
    with pytest.raises(OnnxBackendError, match=rf'crops must be \(B, 3, {h}, {w}\)'):
        runner(np.zeros((3, h, w), np.float32))
    with pytest.raises(OnnxBackendError, match='uint8; normalise them first'):
        runner(np.zeros((1, 3, h, w), np.uint8))
    out = runner(np.zeros((1, 3, h, w), np.float64))    # float64 is cast
    assert out['vertices'].dtype == np.float32


def test_files_that_are_not_ours_are_refused(tmp_path):
    from onnx import TensorProto, helper
    other = str(tmp_path / 'identity.onnx')   # a valid ONNX model with the same input name, not ours
    graph = helper.make_graph([helper.make_node('Identity', ['crops'], ['out'])], 'g',
                              [helper.make_tensor_value_info('crops', TensorProto.FLOAT, ['B', 3])],
                              [helper.make_tensor_value_info('out', TensorProto.FLOAT, ['B', 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), other)
    with pytest.raises(OnnxBackendError, match='not a mesh model exported by mmpose_mpt'):
        OnnxMeshModel(other)
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'not a protobuf at all')
    with pytest.raises(OnnxBackendError, match='junk.onnx: onnxruntime cannot load it'):
        OnnxMeshModel(str(junk))
    with pytest.raises(OnnxBackendError, match='missing.onnx: ONNX file not found'):
        OnnxMeshModel(str(tmp_path / 'missing.onnx'))


def test_missing_onnxruntime_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)   # import onnxruntime -> ImportError
    with pytest.raises(OnnxBackendError, match='needs the onnxruntime package'):
        OnnxMeshModel(str(tmp_path / 'any.onnx'))


def test_missing_onnxscript_is_a_clear_error(body_model_root, tmp_path, monkeypatch):
    model, _ = build_toy_model(body_model_root)
    monkeypatch.setitem(sys.modules, 'onnxscript', None)
    with pytest.raises(OnnxExportError, match='needs the onnx and onnxscript packages'):
        export_onnx(model, str(tmp_path / 'x.onnx'))


def test_models_without_a_pose_network_are_refused(body_model_root, tmp_path):
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmpose.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mpt', 'pretrain_toy.py'))
    cfg.merge_from_dict({k: v for k, v in _overrides(body_model_root).items()})
    cfg.merge_from_dict({'model.head.hidden_dims': (16, 8, 8), 'model.head.num_layers': 1,
                         'model.head.num_heads': 1})
    model = MODELS.build(cfg.model)
    with pytest.raises(OnnxExportError, match='no pose network'):
        export_onnx(model, str(tmp_path / 'x.onnx'))
    assert not osp.exists(tmp_path / 'x.onnx')


@SLOW_EXPORT
def test_export_tool_checks_parity(exported, body_model_root, tmp_path):
    *_, path, _, stdout = exported
    assert 'batch 1: max abs diff vertices' in stdout and 'batch 3: max abs diff' in stdout
    worst = float(stdout.split('max abs diff (3D outputs, metres; camera): ')[1].split()[0])
    assert worst <= TOL
    from mmengine.config import Config
    assert OnnxMeshModel(path).input_size == config_crop_size(Config.fromfile(CONFIG))
    # a checkpoint of another model: one clear line, exit status 2, before any export
    bad = tmp_path / 'other.pth'
    torch.save({'state_dict': {'foo.weight': torch.zeros(2)}}, str(bad))
    out = str(tmp_path / 'other.onnx')
    res = subprocess.run(_tool_cmd(body_model_root, str(bad), out), cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 2 and 'export_onnx.py: error:' in res.stderr
    assert 'does not fit the model' in res.stderr and 'Traceback' not in res.stderr
    assert not osp.exists(out)


@SLOW_EXPORT
def test_inferencer_onnx_backend_matches_pytorch(exported, body_model_root, tmp_path_factory):
    """MeshInferencer end to end (whole-image crop, full-image camera) through onnxruntime vs PyTorch."""
    from mmengine.config import Config
    from test_inferencer_toy import inference_toy

    from mmpose_mpt.apis import MeshInferencer
    *_, path, ckpt, _ = exported
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(_overrides(body_model_root))
    image = inference_toy(tmp_path_factory)['images'][2]
    torch_inf = MeshInferencer(cfg, ckpt, device='cpu', det_model='whole_image')
    ort_inf = MeshInferencer(cfg, backend='onnxruntime', onnx_file=path, device='cpu',
                             det_model='whole_image')
    a = next(torch_inf(image))['predictions'][0][0]
    b = next(ort_inf(image))['predictions'][0][0]
    diff = np.abs(np.asarray(a['vertices']) - np.asarray(b['vertices'])).max()
    print(f'onnxruntime vs pytorch, full-image vertices: max abs diff {diff:.2e} m')
    assert diff <= TOL
    assert np.abs(np.asarray(a['vertices']).std(0)).min() > 1e-3    # a mesh, not one point
