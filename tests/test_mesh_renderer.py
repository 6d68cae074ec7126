"""Headless mesh renderer: draws where the mesh projects and nowhere else."""
import numpy as np

from mmpose_mpt.visualization import (draw_keypoints, look_at_camera, project_orthographic,
                                      render_mesh)


def _quad(z=0.0):
    v = np.array([[-1, -1, z], [1, -1, z], [1, 1, z], [-1, 1, z]], dtype=np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    return v, f


def test_orthographic_quad_fills_its_box_only():
    v, f = _quad()
    v[:, 0] *= 0.5  # tall rectangle: width 1, height 2
    img = render_mesh(v, f, size=(200, 200))
    painted = (img != 255).any(axis=2)
    rot, so = look_at_camera(v, (200, 200))
    px = project_orthographic(v, rot, so)
    x0, y0 = np.floor(px.min(0)).astype(int)
    x1, y1 = np.ceil(px.max(0)).astype(int)
    assert painted[y0 + 2:y1 - 2, x0 + 2:x1 - 2].all()
    outside = painted.copy()
    outside[max(y0 - 1, 0):y1 + 2, max(x0 - 1, 0):x1 + 2] = False
    assert not outside.any()
    # Aspect ratio kept: the rectangle is twice as tall as wide.
    assert abs((y1 - y0) / (x1 - x0) - 2.0) < 0.1


def test_up_axis_z_draws_head_at_top():
    # A thin vertical strip in a z-up frame with a marker triangle at the top (z=2).
    v = np.array([[-0.1, 0, 0], [0.1, 0, 0], [0.1, 0, 2], [-0.1, 0, 2], [-0.5, 0, 1.8], [0.5, 0, 1.8],
                  [0, 0, 2]], dtype=np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]])
    rot, so = look_at_camera(v, (100, 100), up_axis='z')
    px = project_orthographic(v, rot, so)
    assert px[2, 1] < px[1, 1]  # z=2 is above z=0 in the image (smaller row)
    img = render_mesh(v, f, size=(100, 100), up_axis='z')
    rows = np.where((img != 255).any(axis=2).any(axis=1))[0]
    widths = [(img[r] != 255).any(axis=1).sum() for r in rows]
    assert np.argmax(widths) < len(rows) / 3  # the wide marker is in the upper part


def test_perspective_skips_faces_behind_camera():
    v, f = _quad(z=-3.0)  # behind the camera
    img = render_mesh(v, f, size=(64, 64), intrinsics=((50, 50), (32, 32)))
    assert (img == 255).all()
    v, f = _quad(z=3.0)
    img = render_mesh(v, f, size=(64, 64), intrinsics=((50, 50), (32, 32)))
    painted = (img != 255).any(axis=2)
    # The quad spans x,y in [-1, 1] at z=3 -> pixels 32 +- 16.7
    assert painted[20:44, 20:44].all() and not painted[:10].any()


def test_draw_keypoints_respects_visibility():
    img = np.full((50, 50, 3), 255, np.uint8)
    out = draw_keypoints(img, np.array([[10, 10], [40, 40]]), visible=np.array([True, False]),
                         skeleton=[(0, 1)])
    assert (out[10, 10] != 255).any() and (out[40, 40] == 255).all()
    assert (img == 255).all()  # input untouched
