"""MeshEstimator: loss / predict / tensor modes, METRO's evaluation joints (regressed from the mesh)."""
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

import mmpose_mpt  # noqa: F401
from mmpose_mpt.body_models.joint_regressors import H36M_J17_TO_J14

HEAD = dict(type='MPTHead', in_channels=5, input_size=(16, 16), patch_size=8, num_joints=14,
            num_vertices=(6, 12, 24), hidden_dims=(16, 8), num_layers=1, num_heads=2, dropout=0.0)


def build(regressor_path=None):
    from mmpose.registry import MODELS
    init_default_scope('mmpose')
    torch.manual_seed(0)
    model = MODELS.build(dict(type='MeshEstimator', head=HEAD, loss=dict(type='MPTLoss'),
                              joint_regressor=regressor_path, pose_map_size=(16, 16)))
    with torch.no_grad():
        model.head.coord_out.weight.normal_()                 # O(1) outputs, not the ~0 init
    return model.eval()


@pytest.fixture
def regressor_file(tmp_path):
    g = np.random.default_rng(0).random((17, 24))
    path = str(tmp_path / 'J_regressor_h36m_correct.npy')
    np.save(path, g / g.sum(1, keepdims=True))
    return path


def test_predict_reports_mesh_regressed_joints_like_metro(regressor_file):
    model = build(regressor_file)
    x = torch.rand(3, 5, 16, 16)
    with torch.no_grad():
        raw = model(x, mode='tensor')
    samples = model(x, mode='predict')
    g17 = torch.from_numpy(np.load(regressor_file)).float()
    for i, ds in enumerate(samples):
        pred = ds.pred_instances
        # all 17 Human3.6M joints of the predicted mesh (MeshMetric reduces them to LSP-14) and their
        # pelvis as the vertices' root (METRO's MPVE)
        assert pred.keypoints_3d.shape == (1, 17, 3) and pred.vertices.shape == (1, 24, 3)
        assert np.allclose(pred.keypoints_3d[0], (g17 @ raw['vertices'][i]).numpy(), atol=1e-5)
        assert np.allclose(pred.vertex_root[0], (g17[0] @ raw['vertices'][i]).numpy(), atol=1e-5)
        assert np.allclose(pred.keypoints_3d_query[0], raw['joints_3d'][i].numpy(), atol=1e-6)
        lsp = pred.keypoints_3d[0, H36M_J17_TO_J14]
        assert not np.allclose(lsp, pred.keypoints_3d_query[0])
        # 2D keypoints: the LSP-14 joints through the predicted weak-perspective camera, in pixels
        s, tx, ty = raw['camera'][i].numpy()
        expected = (s * lsp[:, :2] + [tx, ty] + 1) * 8
        assert np.allclose(pred.keypoints[0], expected, atol=1e-4)


def test_predict_without_regressor_uses_the_joint_queries():
    model = build(None)
    x = torch.rand(2, 5, 16, 16)
    with torch.no_grad():
        raw = model(x, mode='tensor')
    samples = model(x, mode='predict')
    assert np.allclose(samples[1].pred_instances.keypoints_3d[0], raw['joints_3d'][1].numpy(),
                       atol=1e-6)


def test_loss_mode_needs_targets_and_bad_mode(regressor_file):
    model = build(regressor_file)
    with pytest.raises(ValueError, match='targets'):
        model(torch.rand(1, 5, 16, 16), mode='loss')
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(torch.rand(1, 5, 16, 16), mode='nope')
