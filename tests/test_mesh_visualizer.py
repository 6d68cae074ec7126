"""MeshVisualizer (mmpose VISUALIZERS) and MeshVisualizationHook: meshes land where the camera puts them,
depth order between people, side view, local + TensorBoard backends, painter and pyrender EGL."""
import glob
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

import mmpose_mpt  # noqa: F401
from mmpose.structures import PoseDataSample


def box_mesh(center, half=0.2):
    """A closed cube (8 vertices, 12 outward triangles) around ``center`` (metres, camera frame)."""
    c = np.asarray(center, float)
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * half + c
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                  [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return v, f


def sample(verts, focal=(300.0, 300.0), pp=(160.0, 120.0)):
    ds = PoseDataSample(metainfo=dict(img_path='x.jpg', focal_length=focal, principal_point=pp))
    inst = InstanceData()
    inst.vertices = np.stack(verts).astype(np.float32)
    inst.bboxes = np.array([[10, 10, 50, 60]] * len(verts), np.float32)
    ds.pred_instances = inst
    return ds


def backends():
    from mmpose_mpt.visualization import available_backends
    return available_backends()


@pytest.mark.parametrize('backend', ['painter', 'pyrender-egl'])
def test_meshes_land_on_projection_with_depth_order(backend, tmp_path):
    if backend != 'painter' and backend not in backends():
        pytest.skip(f'{backend} is not usable here')
    from mmpose.registry import VISUALIZERS
    vis = VISUALIZERS.build(dict(type='MeshVisualizer', name=f'vis_{backend}', render_backend=backend,
                                 vis_backends=[dict(type='LocalVisBackend')], save_dir=str(tmp_path)))
    near, faces = box_mesh([0.0, 0.0, 3.0])
    far, _ = box_mesh([0.4, 0.0, 5.0])
    vis.set_faces(faces)
    img = np.zeros((240, 320, 3), np.uint8)
    colors = [(0, 0, 255), (255, 0, 0)]   # BGR: near red, far blue
    out = vis.draw_meshes(img, [far, near], (300.0, 300.0), (160.0, 120.0), colors=[colors[1], colors[0]])
    # the near cube's centre projects to (160, 120): red there (it hides the far one behind it)
    y, x = 120, 160
    assert out[y, x, 2] > 100 and out[y, x, 0] < 60, out[y, x]
    # near cube: x up to 160 + 300 * 0.2 / 2.8 = 181.4 px; far cube: x from 160 + 300 * 0.2 / 4.8 = 172.5
    # to 197.5: where both cover (176) the near one is seen, right of the near one (190) the far one
    assert out[120, 176, 2] > 100 and out[120, 176, 0] < 60, out[120, 176]
    assert out[120, 190, 0] > 100 and out[120, 190, 2] < 60, out[120, 190]
    assert out[120, 205].sum() == 0
    assert out[5, 5].sum() == 0                      # background untouched
    # add_datasample: RGB in, RGB out, side view appended, to the local backend
    drawn = vis.add_datasample('demo', img[..., ::-1], sample([near, far]), draw_bbox=True, side_view=True, step=3)
    assert drawn.shape == (240, 320 + 180, 3)
    assert drawn[:, 320:].std() > 0                  # something in the side view
    assert glob.glob(str(tmp_path / 'vis_data' / 'vis_image' / 'demo_3.png'))


def test_crop_camera_vertices_overlay():
    """A root-relative mesh with weak-perspective (s, tx, ty) drawn through the crop's perspective camera
    covers the pixels the weak-perspective projection gives."""
    from mmpose_mpt.visualization import crop_camera_vertices
    v, faces = box_mesh([0.0, 0.0, 0.0], half=0.3)
    cam = np.array([[0.9, 0.1, -0.2]])
    cv, f, c = crop_camera_vertices(v[None], cam, 224)
    px = cv[0, :, :2] / cv[0, :, 2:] * f[0] + c
    weak = (cam[0, 0] * (v[:, :2] + cam[0, 1:]) + 1) * 112
    # corners differ by the cube's own depth (weak perspective): within 4 % of the crop
    assert np.abs(px - weak).max() < 0.04 * 224
    root_px = (cv[0].mean(0)[:2] / cv[0].mean(0)[2]) * f[0] + c
    np.testing.assert_allclose(root_px, (cam[0, 0] * cam[0, 1:] + 1) * 112, atol=1e-6)


def _fake_runner(tmp_path, faces, tb: bool):
    from mmengine.visualization import Visualizer
    backends = [dict(type='LocalVisBackend')] + ([dict(type='TensorboardVisBackend')] if tb else [])
    vis = Visualizer(name=f'runner_vis_{tb}', vis_backends=backends, save_dir=str(tmp_path))
    pre = SimpleNamespace(body_models=[SimpleNamespace(faces=faces)])
    return SimpleNamespace(model=SimpleNamespace(data_preprocessor=pre), visualizer=vis, iter=7)


def test_visualization_hook_local_and_tensorboard(tmp_path):
    tb = True
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        tb = False
    from mmpose.registry import HOOKS
    v, faces = box_mesh([0.0, 0.0, 0.0], half=0.3)
    hook = HOOKS.build(dict(type='MeshVisualizationHook', interval=1, max_samples=2, render_backend='painter',
                            out_dir=str(tmp_path / 'png')))
    runner = _fake_runner(tmp_path, faces, tb)
    crops = torch.full((3, 3, 224, 224), 40, dtype=torch.uint8)
    outs = []
    for k in range(3):
        ds = PoseDataSample()
        ds.pred_instances = InstanceData(vertices=v[None].astype(np.float32),
                                         camera=np.array([[1.0, 0.0, 0.0]], np.float32))
        ds.gt_instances = InstanceData(vertices=v[None].astype(np.float32) * 1.1, has_vertices=np.ones(1))
        outs.append(ds)
    hook.after_val_iter(runner, 0, dict(inputs=crops, data_samples=outs), outs)
    hook.after_test_iter(runner, 1, dict(inputs=crops, data_samples=outs), outs)
    local = sorted(glob.glob(str(tmp_path / 'vis_data' / 'vis_image' / '*.png')))
    assert [osp.basename(p) for p in local] == ['test_mesh_000001_7.png', 'val_mesh_000000_7.png']
    import cv2
    img = cv2.imread(local[1])
    assert img.shape == (2 * 224, 224 + 168, 3)          # 2 samples, crop + side view
    assert (np.abs(img[112, 112].astype(int) - 40) > 30).any()   # mesh drawn at the crop centre
    assert len(glob.glob(str(tmp_path / 'png' / '*.png'))) == 2
    if tb:
        runner.visualizer.close()
        assert glob.glob(str(tmp_path / 'vis_data' / 'events.out.tfevents.*'))
    # heatmap inputs (pre-training) are skipped, not an error
    hook.after_val_iter(runner, 0, dict(inputs=torch.zeros(2, 17, 8, 8)), outs[:2])
