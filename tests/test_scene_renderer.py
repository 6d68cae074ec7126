"""Scene renderer (mmpose_mpt/visualization/scene_renderer.py): perspective geometry, depth order between
people, alpha, side view, backend choice and errors, for the painter and (where EGL works) pyrender.

Geometry is checked against pixels computed by hand from the pinhole model u = fx x / z + cx,
v = fy y / z + cy, with fx != fy and an off-centre principal point so that swapped or flipped axes show.
"""
import numpy as np
import pytest

from mmpose_mpt.visualization import scene_renderer as sr

W, H = 320, 240
FOCAL = (400.0, 300.0)
PP = (150.3, 130.2)
BG = (40, 40, 40)


def quad(x0, x1, y0, y1, z):
    """A planar rectangle (4 vertices, 2 faces) at depth z in the camera frame."""
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    return v, f


def sphere(radius=0.3, centre=(0.0, 0.0, 3.0), n=24):
    """A UV sphere: (V, 3), (F, 3)."""
    th, ph = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n, endpoint=False),
                         indexing='ij')
    v = np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], -1).reshape(-1, 3)
    faces = []
    m = 2 * n
    for i in range(n - 1):
        for j in range(m):
            a, b, c, d = i * m + j, i * m + (j + 1) % m, (i + 1) * m + j, (i + 1) * m + (j + 1) % m
            faces += [[a, c, b], [b, c, d]]
    return v * radius + np.asarray(centre), np.asarray(faces)


def background():
    img = np.empty((H, W, 3), np.uint8)
    img[:] = BG
    return img


def covered(out):
    return np.any(out != np.asarray(BG, np.uint8), axis=-1)


def expected_box(x0, x1, y0, y1, z):
    (fx, fy), (cx, cy) = FOCAL, PP
    return fx * x0 / z + cx, fx * x1 / z + cx, fy * y0 / z + cy, fy * y1 / z + cy


def egl_or_skip():
    if not sr._backend_usable('pyrender-egl'):
        pytest.skip('pyrender is installed but EGL does not work on this machine (system libEGL / Mesa)')
    return 'pyrender-egl'


BACKENDS = ['painter', 'pyrender-egl']


def backend_or_skip(name):
    return egl_or_skip() if name == 'pyrender-egl' else name


# ------------------------------------------------------------------------------------------ geometry
@pytest.mark.parametrize('name', BACKENDS)
def test_quad_at_known_depth_lands_on_expected_pixels(name):
    backend = backend_or_skip(name)
    # below-right of the principal point: x right, y down; edges off the pixel grid
    box = (0.1, 0.5, 0.05, 0.35, 2.5)
    v, f = quad(*box)
    img = background()
    out = sr.render_meshes(img, [v], f, FOCAL, PP, colors=[(0, 0, 255)], backend=backend)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == np.asarray(BG, np.uint8)).all(), 'the input image was modified'
    u0, u1, v0, v1 = expected_box(*box)         # 166.3..230.3 x 136.2..172.2 (pixel i centred on i)
    ys, xs = np.nonzero(covered(out))
    assert u0 - 1.5 <= xs.min() <= u0 + 1 and u1 - 1 <= xs.max() <= u1 + 1.5
    assert v0 - 1.5 <= ys.min() <= v0 + 1 and v1 - 1 <= ys.max() <= v1 + 1.5
    # the inside is the mesh's colour (red in BGR, shaded)
    inner = out[int(v0) + 3:int(v1) - 3, int(u0) + 3:int(u1) - 3].reshape(-1, 3).astype(int)
    assert (inner[:, 2] > 120).all() and (inner[:, :2] < 60).all()
    # sub-pixel: the coverage's centroid is the projected centre (OpenCV pixel-centre convention)
    _, cover = sr._render(W, H, [v], f, [(0, 0, 255)], *FOCAL, *PP, backend)
    gy, gx = np.mgrid[:H, :W]
    assert abs((cover * gx).sum() / cover.sum() - (u0 + u1) / 2) < 0.1
    assert abs((cover * gy).sum() / cover.sum() - (v0 + v1) / 2) < 0.1
    # anti-aliased edges: the painter's spread ~0.7 px each side, pyrender's MSAA is area-exact
    tol = 1.6 if backend == 'painter' else 0.3
    assert abs(cover[int(PP[1]) + 20].sum() - (u1 - u0)) < tol
    assert abs(cover[:, int(PP[0]) + 50].sum() - (v1 - v0)) < tol


@pytest.mark.parametrize('name', BACKENDS)
def test_two_people_occlude_by_depth_whatever_the_order(name):
    backend = backend_or_skip(name)
    near, f = quad(-0.3, 0.1, -0.2, 0.2, 2.0)
    far, _ = quad(-0.4, 0.8, -0.4, 0.4, 4.0)       # larger and behind, overlapping on screen
    red, blue = (0, 0, 255), (255, 0, 0)
    u = int(FOCAL[0] * -0.1 / 2.0 + PP[0])          # a pixel inside both projections
    v = int(PP[1])
    u_far_only = int(FOCAL[0] * 0.6 / 4.0 + PP[0])  # inside the far one only
    for verts, cols in (([near, far], [red, blue]), ([far, near], [blue, red])):
        out = sr.render_meshes(background(), verts, f, FOCAL, PP, colors=cols, backend=backend)
        assert out[v, u, 2] > 120 and out[v, u, 0] < 60, f'near (red) must cover far: {out[v, u]}'
        assert out[v, u_far_only, 0] > 120 and out[v, u_far_only, 2] < 60


@pytest.mark.parametrize('name', BACKENDS)
def test_alpha_blends_over_the_image(name):
    backend = backend_or_skip(name)
    v, f = quad(-0.2, 0.2, -0.2, 0.2, 2.0)
    img = background()
    full = sr.render_meshes(img, [v], f, FOCAL, PP, colors=[(0, 200, 250)], alpha=1.0, backend=backend)
    half = sr.render_meshes(img, [v], f, FOCAL, PP, colors=[(0, 200, 250)], alpha=0.5, backend=backend)
    none = sr.render_meshes(img, [v], f, FOCAL, PP, colors=[(0, 200, 250)], alpha=0.0, backend=backend)
    c = (int(PP[1]), int(PP[0]))
    expect = (img[c].astype(float) + full[c].astype(float)) / 2
    assert np.abs(half[c].astype(float) - expect).max() <= 2
    assert (none == img).all()


def test_silhouettes_of_pyrender_and_painter_agree():
    backend = egl_or_skip()
    a, f = sphere(0.3, (0.05, 0.1, 3.0))
    b, _ = sphere(0.25, (0.45, -0.1, 4.0))
    colors = list(sr.DEFAULT_COLORS[:2])
    gl = sr._render(W, H, [a, b], f, colors, *FOCAL, *PP, backend)[1] >= 0.5
    pa = sr._render(W, H, [a, b], f, colors, *FOCAL, *PP, 'painter')[1] >= 0.5
    # OpenCV's polygon fill includes the boundary pixels: the painter's silhouettes are ~1 px wider
    # all round (IoU ~0.944 on these ~40 px blobs), so the IoU bound is loose and the centroids tight
    iou = (gl & pa).sum() / (gl | pa).sum()
    assert iou > 0.92, iou
    assert np.abs(np.argwhere(gl).mean(0) - np.argwhere(pa).mean(0)).max() < 0.3
    # and the public overlays agree on which person is in front where they overlap
    out_gl = sr.render_meshes(background(), [a, b], f, FOCAL, PP, colors=[(0, 0, 255), (255, 0, 0)],
                              backend=backend)
    out_pa = sr.render_meshes(background(), [a, b], f, FOCAL, PP, colors=[(0, 0, 255), (255, 0, 0)],
                              backend='painter')
    both = gl & pa
    assert ((out_gl[both].argmax(-1) == out_pa[both].argmax(-1)).mean()) > 0.99
    # the sphere's outline lies where the pinhole model puts its centre +- its apparent radius
    ys, xs = np.nonzero(gl)
    assert abs(xs.min() - (FOCAL[0] * 0.05 / 3.0 + PP[0] - FOCAL[0] * 0.3 / np.sqrt(3.0 ** 2 - 0.09))) < 3


def test_pyrender_camera_pose_is_the_opencv_frame():
    """A point above the principal point (y < 0) must be drawn in the upper half (OpenGL flips y)."""
    backend = egl_or_skip()
    v, f = quad(-0.05, 0.05, -0.5, -0.3, 2.0)
    out = covered(sr.render_meshes(background(), [v], f, FOCAL, PP, backend=backend))
    ys, _ = np.nonzero(out)
    assert ys.max() < PP[1]


def test_meshes_behind_or_across_the_camera_are_safe():
    v, f = quad(-0.2, 0.2, -0.2, 0.2, -1.0)                 # behind the camera: not drawn
    out = sr.render_meshes(background(), [v], f, FOCAL, PP, backend='painter')
    assert not covered(out).any()
    v2, f2 = quad(-50, 50, -50, 50, 1e-4)                   # huge and almost on the camera plane
    sr.render_meshes(background(), [v2], f2, FOCAL, PP, backend='painter')
    out = sr.render_meshes(background(), [], f, FOCAL, PP, backend='painter')
    assert (out == background()).all()


# ------------------------------------------------------------------------------------------ side view
@pytest.mark.parametrize('name', BACKENDS)
def test_side_view_puts_farther_people_to_the_right(name):
    backend = backend_or_skip(name)
    near, f = sphere(0.2, (0.0, 0.3, 2.0))       # lower (y down) and nearer
    far, _ = sphere(0.2, (0.0, -0.3, 5.0))
    out = sr.render_side_view([near, far], f, (200, 160), colors=[(0, 0, 255), (255, 0, 0)],
                              backend=backend)
    assert out.shape == (160, 200, 3)
    o = out.astype(int)
    red = o[..., 2] > o[..., 0] + 40
    blue = o[..., 0] > o[..., 2] + 40
    assert red.sum() > 100 and blue.sum() > 100
    (ry, rx), (by, bx) = [np.argwhere(m).mean(0) for m in (red, blue)]
    assert rx < bx, 'the camera looks from the left of the side view: nearer people are on the left'
    assert ry > by, 'y (down) is kept: the lower person is lower'
    # framed: everything inside, with a margin
    ink = np.any(out != 255, axis=-1)
    ys, xs = np.nonzero(ink)
    assert xs.min() > 2 and ys.min() > 2 and xs.max() < 197 and ys.max() < 157
    # ... and tight: the scene fills the margin-free area along one axis
    assert max((xs.max() - xs.min()) / (0.8 * 200), (ys.max() - ys.min()) / (0.8 * 160)) > 0.9


@pytest.mark.parametrize('name', BACKENDS)
def test_side_view_keeps_depth_order_along_its_own_view(name):
    backend = backend_or_skip(name)
    # two people side by side in x: from +x the one with larger x is nearer the side camera
    left, f = sphere(0.3, (-0.4, 0.0, 3.0))
    right, _ = sphere(0.3, (0.4, 0.0, 3.0))
    out = sr.render_side_view([left, right], f, (160, 160), colors=[(255, 0, 0), (0, 0, 255)],
                              backend=backend)
    c = out[80, 80].astype(int)
    assert c[2] > c[0] + 40, f'the +x person (red) must be in front: {c}'


# ------------------------------------------------------------------------------------------ backends
def test_pyrender_is_installed():
    # requirements/render.txt + render_nodeps.txt (tools/setup_env.sh); only a machine without a working
    # EGL / OSMesa library skips the pyrender tests
    assert sr._pyrender_installed(), 'pyrender / PyOpenGL / trimesh missing: bash tools/setup_env.sh'


def test_available_backends_lists_usable_ones_in_order():
    names = sr.available_backends()
    assert names[-1] == 'painter'
    assert names == [b for b in sr.BACKENDS if b in names]


def test_auto_uses_the_first_available_backend():
    v, f = quad(-0.2, 0.2, -0.2, 0.2, 2.0)
    out = sr.render_meshes(background(), [v], f, FOCAL, PP)
    first = sr.render_meshes(background(), [v], f, FOCAL, PP, backend=sr.available_backends()[0])
    assert (out == first).all()


def test_explicit_missing_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sr, '_probe_cache', {})
    monkeypatch.setattr(sr, '_pyrender_installed', lambda: False)
    v, f = quad(-0.2, 0.2, -0.2, 0.2, 2.0)
    for name in ('pyrender-egl', 'pyrender-osmesa'):
        with pytest.raises(sr.SceneRenderError, match=f"backend '{name}' is not available.*pyrender"):
            sr.render_meshes(background(), [v], f, FOCAL, PP, backend=name)
    assert sr.available_backends() == ['painter']
    # 'auto' falls back to the painter
    out = sr.render_meshes(background(), [v], f, FOCAL, PP)
    assert covered(out).any()
    with pytest.raises(sr.SceneRenderError, match='unknown rendering backend'):
        sr.render_meshes(background(), [v], f, FOCAL, PP, backend='opengl')


def test_other_gl_platform_than_the_bound_one_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sr, '_probe_cache', {})
    monkeypatch.setattr(sr, '_bound_platform', lambda: 'egl')
    monkeypatch.setattr(sr, '_pyrender_installed', lambda: True)
    v, f = quad(-0.2, 0.2, -0.2, 0.2, 2.0)
    with pytest.raises(sr.SceneRenderError, match='PYOPENGL_PLATFORM=osmesa'):
        sr.render_meshes(background(), [v], f, FOCAL, PP, backend='pyrender-osmesa')


def test_bad_inputs_are_clear_errors():
    v, f = quad(-0.2, 0.2, -0.2, 0.2, 2.0)
    with pytest.raises(sr.SceneRenderError, match=r'image must be an \(H, W, 3\) uint8'):
        sr.render_meshes(np.zeros((H, W), np.uint8), [v], f, FOCAL, PP, backend='painter')
    with pytest.raises(sr.SceneRenderError, match=r'vertices\[0\] must have shape \(V, 3\)'):
        sr.render_meshes(background(), [v[:, :2]], f, FOCAL, PP, backend='painter')
    with pytest.raises(sr.SceneRenderError, match='faces index'):
        sr.render_meshes(background(), [v], f + 10, FOCAL, PP, backend='painter')
    with pytest.raises(sr.SceneRenderError, match='one BGR triple per mesh'):
        sr.render_meshes(background(), [v, v], f, FOCAL, PP, colors=[(1, 2, 3)], backend='painter')
    with pytest.raises(sr.SceneRenderError, match='alpha'):
        sr.render_meshes(background(), [v], f, FOCAL, PP, alpha=2.0, backend='painter')
    with pytest.raises(sr.SceneRenderError, match='NaN'):
        sr.render_meshes(background(), [v * np.nan], f, FOCAL, PP, backend='painter')
    from mmpose_mpt.utils.cli import MPTUserError
    assert issubclass(sr.SceneRenderError, MPTUserError)


_OSMESA_SCRIPT = r'''
import json, os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_scene_renderer import FOCAL, PP, W, H, quad, sphere, background, expected_box
from mmpose_mpt.visualization import scene_renderer as sr
if not sr._backend_usable('pyrender-osmesa'):
    print(json.dumps({'skip': True}))
    sys.exit(0)
box = (0.1, 0.5, 0.05, 0.35, 2.5)
v, f = quad(*box)
_, cover = sr._render(W, H, [v], f, [(0, 0, 255)], *FOCAL, *PP, 'pyrender-osmesa')
gy, gx = np.mgrid[:H, :W]
u0, u1, v0, v1 = expected_box(*box)
near, f2 = quad(-0.3, 0.1, -0.2, 0.2, 2.0)
far, _ = quad(-0.4, 0.8, -0.4, 0.4, 4.0)
out = sr.render_meshes(background(), [far, near], f2, FOCAL, PP, colors=[(255, 0, 0), (0, 0, 255)],
                       backend='pyrender-osmesa')
u = int(FOCAL[0] * -0.1 / 2.0 + PP[0])
a, fa = sphere(0.3, (0.05, 0.1, 3.0))
gl = sr._render(W, H, [a], fa, [(0, 0, 255)], *FOCAL, *PP, 'pyrender-osmesa')[1] >= 0.5
pa = sr._render(W, H, [a], fa, [(0, 0, 255)], *FOCAL, *PP, 'painter')[1] >= 0.5
print(json.dumps({
    'skip': False, 'platform': os.environ.get('PYOPENGL_PLATFORM'),
    'dx': float((cover * gx).sum() / cover.sum() - (u0 + u1) / 2),
    'dy': float((cover * gy).sum() / cover.sum() - (v0 + v1) / 2),
    'near_pixel': out[int(PP[1]), u].tolist(),
    'iou': float((gl & pa).sum() / (gl | pa).sum())}))
'''


@pytest.mark.slow
def test_pyrender_osmesa_in_its_own_process():
    """PyOpenGL binds one platform per process (this one may be bound to EGL): OSMesa runs in a child."""
    import json
    import os
    import os.path as osp
    import subprocess
    import sys
    here = osp.dirname(osp.abspath(__file__))
    env = dict(os.environ, PYOPENGL_PLATFORM='osmesa')
    res = subprocess.run([sys.executable, '-c', _OSMESA_SCRIPT, here], capture_output=True, text=True,
                         env=env, timeout=300, cwd=osp.dirname(here))
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out['skip']:
        pytest.skip('pyrender is installed but OSMesa does not work here (Debian/Ubuntu: libosmesa6)')
    assert out['platform'] == 'osmesa'
    # no multisampling: whole pixels whose centres are inside (expected offsets +0.2, +0.3 px here;
    # a half-pixel convention error would give -0.3 / -0.2 or +0.7 / +0.8)
    assert abs(out['dx'] - 0.2) < 0.05 and abs(out['dy'] - 0.3) < 0.05, out
    b, g, r = out['near_pixel']
    assert r > b + 40, out
    assert out['iou'] > 0.92, out
