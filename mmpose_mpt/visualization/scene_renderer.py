"""Render several meshes in one perspective camera, over an image or as a side view.

Backends, in the order ``backend='auto'`` tries them (:func:`available_backends` lists the usable ones):

* ``'pyrender-egl'``: pyrender offscreen with ``PYOPENGL_PLATFORM=egl`` (a GPU driver's EGL or Mesa's
  software llvmpipe, which the project's machines have without any ``/dev/dri``); exact per-pixel depth
  test, smooth shading.
* ``'pyrender-osmesa'``: pyrender with ``PYOPENGL_PLATFORM=osmesa`` (Debian ``libosmesa6``; needs
  PyOpenGL >= 3.1.4, see ``requirements/render.txt``).
* ``'painter'``: numpy + OpenCV painter's algorithm (always available): the faces of all meshes are
  sorted far to near by mean depth and filled in that order, so people occlude each other by depth;
  intersecting surfaces are not resolved per pixel.

Camera convention (all backends): vertices are in the OpenCV camera frame, metres: x right, y down, z
forward; a point ``(x, y, z)`` lands on pixel ``(fx * x / z + cx, fy * y / z + cy)``. pyrender's camera is
OpenGL's (x right, y up, looking along -z), so the vertices are rotated by 180 degrees about x (y and z
negated; a rotation, so the triangle winding is kept) and the camera sits at the origin with identity
pose.

PyOpenGL binds one platform per process (``PYOPENGL_PLATFORM`` is read when ``OpenGL`` is first
imported). :func:`available_backends` therefore probes a GL platform in a short subprocess while no
platform is bound yet, and the first pyrender render binds the process to its platform.
"""
import os
import subprocess
import sys
import threading
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..utils.cli import MPTUserError
from .mesh_renderer import two_sided_shade

__all__ = ['available_backends', 'render_meshes', 'render_side_view', 'SceneRenderError', 'BACKENDS',
           'DEFAULT_COLORS']

BACKENDS = ('pyrender-egl', 'pyrender-osmesa', 'painter')
_PLATFORM = {'pyrender-egl': 'egl', 'pyrender-osmesa': 'osmesa'}
# BGR, one per person (cycled): light blue, salmon, light green, violet, sand
DEFAULT_COLORS = ((230, 190, 170), (150, 160, 240), (160, 220, 160), (220, 160, 200), (140, 210, 230))
# the painter's light travels from the camera into the scene, slightly from above-left
_LIGHT_DIR = np.array([0.25, 0.35, 1.0]) / np.linalg.norm([0.25, 0.35, 1.0])
_ZNEAR = 1e-3


class SceneRenderError(MPTUserError, ValueError):
    """Bad input to the scene renderer, or a rendering backend that was asked for but is missing."""


# --------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------
def _check_inputs(vertices: Sequence[np.ndarray], faces: np.ndarray,
                  colors: Optional[Sequence[Tuple[int, int, int]]]) -> Tuple[List[np.ndarray], np.ndarray,
                                                                               List[Tuple[int, int, int]]]:
    if isinstance(vertices, np.ndarray) and vertices.ndim == 2:
        vertices = [vertices]
    verts = []
    for i, v in enumerate(vertices):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 3:
            raise SceneRenderError(f'vertices[{i}] must have shape (V, 3), got {v.shape}')
        if not np.isfinite(v).all():
            raise SceneRenderError(f'vertices[{i}] contains NaN or inf')
        verts.append(v)
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise SceneRenderError(f'faces must be an integer array of shape (F, 3), got {faces.dtype} '
                               f'{faces.shape}')
    faces = faces.astype(np.int64)
    for i, v in enumerate(verts):
        if faces.size and (faces.min() < 0 or faces.max() >= len(v)):
            raise SceneRenderError(f'faces index vertices 0..{faces.max()} but vertices[{i}] has only '
                                   f'{len(v)}')
    if colors is None:
        colors = [DEFAULT_COLORS[i % len(DEFAULT_COLORS)] for i in range(len(verts))]
    else:
        colors = [tuple(int(c) for c in col) for col in colors]
        if len(colors) < len(verts) or any(len(c) != 3 for c in colors):
            raise SceneRenderError(f'colors must give one BGR triple per mesh ({len(verts)} meshes), '
                                   f'got {len(colors)}')
    return verts, faces, list(colors)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
            or image.dtype != np.uint8:
        desc = f'{image.dtype} {image.shape}' if isinstance(image, np.ndarray) else type(image).__name__
        raise SceneRenderError(f'image must be an (H, W, 3) uint8 BGR array, got {desc}')
    return image


# --------------------------------------------------------------------------------------------------
# backend discovery
# --------------------------------------------------------------------------------------------------
_lock = threading.Lock()
_probe_cache: Dict[str, bool] = {}
_renderers: Dict[str, object] = {}


def _bound_platform() -> Optional[str]:
    """The GL platform this process is bound to ('egl', 'osmesa', other name) or None if not yet."""
    if 'OpenGL.platform' in sys.modules:
        plat = type(sys.modules['OpenGL.platform'].PLATFORM).__name__.lower()
        for name in ('egl', 'osmesa'):
            if plat.startswith(name):
                return name
        return plat
    env = os.environ.get('PYOPENGL_PLATFORM')
    return env.lower() if env else None


def _pyrender_installed() -> bool:
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in ('pyrender', 'OpenGL', 'trimesh'))


def _patch_numpy_for_pyrender() -> None:
    """pyrender 0.1.45 uses ``np.infty`` (``Mesh.bounds``), removed in numpy 2: alias it back."""
    if 'infty' not in np.__dict__:
        np.infty = np.inf  # type: ignore[attr-defined]


_PROBE = r'''
import numpy as np
if 'infty' not in np.__dict__:
    np.infty = np.inf
import pyrender
r = pyrender.OffscreenRenderer(8, 8)
s = pyrender.Scene()
s.add(pyrender.IntrinsicsCamera(8, 8, 4, 4))
c, d = r.render(s)
r.delete()
print('OK', c.shape)
'''


def _probe_subprocess(platform: str) -> bool:
    env = dict(os.environ, PYOPENGL_PLATFORM=platform)
    try:
        out = subprocess.run([sys.executable, '-c', _PROBE], env=env, capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and 'OK' in out.stdout


def _backend_usable(backend: str) -> bool:
    if backend == 'painter':
        return True
    platform = _PLATFORM[backend]
    bound = _bound_platform()
    if bound is not None and bound != platform:
        # this process's PyOpenGL is (or will be) bound to another platform; checked before the cache
        # because a probe made before the binding says nothing about now
        return False
    if backend not in _probe_cache:
        if not _pyrender_installed():
            ok = False
        elif backend in _renderers:
            ok = True
        elif 'OpenGL.platform' in sys.modules or bound == platform:
            # the process is (or is set to be) on this platform already: try it here
            try:
                _get_renderer(backend, 8, 8)
                ok = True
            except Exception:  # noqa: BLE001 - any GL failure means "not usable here"
                ok = False
        else:
            ok = _probe_subprocess(platform)
        _probe_cache[backend] = ok
    return _probe_cache[backend]


def available_backends() -> List[str]:
    """The backends usable in this process, in preference order (always ends with ``'painter'``).

    Returns:
        A subset of ``['pyrender-egl', 'pyrender-osmesa', 'painter']``.
    """
    with _lock:
        return [b for b in BACKENDS if _backend_usable(b)]


def _resolve_backend(backend: str) -> str:
    if backend == 'auto':
        with _lock:   # the first usable one; later ones are not probed
            return next(b for b in BACKENDS if _backend_usable(b))
    if backend not in BACKENDS:
        raise SceneRenderError(f"unknown rendering backend {backend!r}; choose 'auto' or one of "
                               f'{list(BACKENDS)}')
    with _lock:
        usable = _backend_usable(backend)
    if not usable:
        platform = _PLATFORM[backend]
        bound = _bound_platform()
        if not _pyrender_installed():
            why = ('pyrender / PyOpenGL / trimesh are not installed (bash tools/setup_env.sh, or pip '
                   'install -c requirements/constraints.txt -r requirements/render.txt, then pip '
                   'install --no-deps -r requirements/render_nodeps.txt)')
        elif bound is not None and bound != platform:
            why = (f'PyOpenGL in this process is bound to the {bound!r} platform; set '
                   f'PYOPENGL_PLATFORM={platform} before anything imports OpenGL')
        elif platform == 'osmesa':
            why = 'no working OSMesa (Debian/Ubuntu: apt-get install libosmesa6; PyOpenGL>=3.1.4)'
        else:
            why = 'no working EGL (Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)'
        raise SceneRenderError(f'rendering backend {backend!r} is not available: {why}; '
                               f'available: {available_backends()}')
    return backend


# --------------------------------------------------------------------------------------------------
# pyrender backend
# --------------------------------------------------------------------------------------------------
def _import_pyrender(platform: str):
    bound = _bound_platform()
    if bound is None:
        os.environ['PYOPENGL_PLATFORM'] = platform
    _patch_numpy_for_pyrender()
    import pyrender
    return pyrender


def _get_renderer(backend: str, width: int, height: int):
    """One offscreen renderer per backend, resized on demand (creating one costs ~10-30 ms)."""
    bound = _bound_platform()
    if bound is not None and bound != _PLATFORM[backend]:
        # pyrender picks its platform from PYOPENGL_PLATFORM when the renderer is created
        raise SceneRenderError(f'rendering backend {backend!r}: PyOpenGL in this process is bound to '
                               f'{bound!r}')
    pyrender = _import_pyrender(_PLATFORM[backend])
    r = _renderers.get(backend)
    if r is None:
        r = pyrender.OffscreenRenderer(width, height)
        _renderers[backend] = r
    elif (r.viewport_width, r.viewport_height) != (width, height):
        r.viewport_width, r.viewport_height = width, height
    return r


def _render_pyrender(backend: str, width: int, height: int, verts: List[np.ndarray], faces: np.ndarray,
                     colors: List[Tuple[int, int, int]], fx: float, fy: float, cx: float,
                     cy: float) -> Tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 BGR colour over black and (H, W) float32 coverage in [0, 1], with pyrender."""
    import trimesh
    with _lock:
        renderer = _get_renderer(backend, width, height)
        pyrender = sys.modules['pyrender']
        scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[0.3, 0.3, 0.3])
        gl_from_cv = np.array([1.0, -1.0, -1.0])
        zmax = 1.0
        for v, col in zip(verts, colors):
            zmax = max(zmax, float(v[:, 2].max()))
            mesh = trimesh.Trimesh(v * gl_from_cv, faces, process=False)
            material = pyrender.MetallicRoughnessMaterial(
                metallicFactor=0.0, roughnessFactor=0.8, alphaMode='OPAQUE', doubleSided=True,
                baseColorFactor=[col[2] / 255.0, col[1] / 255.0, col[0] / 255.0, 1.0])
            scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=True))
        # pyrender's IntrinsicsCamera takes pixel intrinsics of a y-down image, but in OpenGL's window
        # convention pixel i spans [i, i + 1] (centre i + 0.5); in OpenCV's, pixel i is centred on i.
        # The half-pixel shift keeps both backends on the same pixels (measured: without it pyrender's
        # silhouettes sit 0.5 px up-left of the pinhole model's).
        camera = pyrender.IntrinsicsCamera(fx=fx, fy=fy, cx=cx + 0.5, cy=cy + 0.5, znear=0.01,
                                           zfar=zmax * 2 + 10)
        scene.add(camera, pose=np.eye(4))
        scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=2.5), pose=np.eye(4))
        color, depth = renderer.render(scene, flags=pyrender.RenderFlags.RGBA)
    if color.shape[-1] == 4:
        # EGL: multisampled, so edge pixels are partly covered; alpha is that coverage and the colour is
        # already mixed with the black background (a depth > 0 mask would miss or darken edge pixels)
        cover = color[..., 3].astype(np.float32) / 255.0
    else:
        # OSMesa ignores RenderFlags.RGBA (no framebuffer objects, no multisampling): depth is coverage
        cover = (depth > 0).astype(np.float32)
    return np.ascontiguousarray(color[..., 2::-1]), cover


# --------------------------------------------------------------------------------------------------
# painter backend
# --------------------------------------------------------------------------------------------------
def _render_painter(width: int, height: int, verts: List[np.ndarray], faces: np.ndarray,
                    colors: List[Tuple[int, int, int]], fx: float, fy: float, cx: float,
                    cy: float, background: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 BGR colour and (H, W) float32 coverage in [0, 1], by one global far-to-near
    face sort (anti-aliased edges).

    Without ``background`` the colour is over black (mixed with it at the edges, as pyrender's).
    With one, the faces are filled straight over a copy of it and no coverage is drawn (None is
    returned for it): that halves the fill calls of the opaque overlay.
    """
    pts_all, depth_all, col_all = [], [], []
    lim = 8.0 * max(width, height)  # keep fixed-point coordinates far from int32 overflow
    for v, col in zip(verts, colors):
        tri = v[faces]                                           # (F, 3, 3)
        z = tri[..., 2]
        front = z.min(axis=1) > _ZNEAR                           # faces crossing the camera plane dropped
        tri, z = tri[front], z[front]
        pix = np.stack([fx * tri[..., 0] / z + cx, fy * tri[..., 1] / z + cy], axis=-1)  # (F', 3, 2)
        lo, hi = pix.min(axis=1), pix.max(axis=1)
        inside = (hi[:, 0] >= 0) & (lo[:, 0] < width) & (hi[:, 1] >= 0) & (lo[:, 1] < height)
        tri, z, pix = tri[inside], z[inside], np.clip(pix[inside], -lim, lim)
        shade = two_sided_shade(tri, _LIGHT_DIR)
        col_all.append(np.clip(np.asarray(col, np.float64)[None] * shade[:, None], 0, 255))
        pts_all.append(np.round(pix * 16).astype(np.int32))     # 4 fractional bits: smooth edges
        depth_all.append(z.mean(axis=1))
    canvas = np.zeros((height, width, 3), np.uint8) if background is None else background.copy()
    mask = np.zeros((height, width), np.uint8) if background is None else None
    if not pts_all:
        return canvas, None if mask is None else mask.astype(np.float32)
    pts = np.concatenate(pts_all)
    cols = np.concatenate(col_all).astype(np.int64).tolist()
    order = np.argsort(-np.concatenate(depth_all), kind='stable')  # far to near, across all meshes
    for i in order:
        cv2.fillConvexPoly(canvas, pts[i], cols[i], lineType=cv2.LINE_AA, shift=4)
        if mask is not None:
            cv2.fillConvexPoly(mask, pts[i], 255, lineType=cv2.LINE_AA, shift=4)
    return canvas, None if mask is None else mask.astype(np.float32) / 255.0


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------
def _render(width: int, height: int, verts, faces, colors, fx, fy, cx, cy, backend,
            background=None) -> Tuple[np.ndarray, np.ndarray]:
    backend = _resolve_backend(backend)
    if not verts:
        base = np.zeros((height, width, 3), np.uint8) if background is None else background.copy()
        return base, np.zeros((height, width), np.float32)
    if backend == 'painter':
        return _render_painter(width, height, verts, faces, colors, fx, fy, cx, cy, background)
    return _render_pyrender(backend, width, height, verts, faces, colors, fx, fy, cx, cy)


def render_meshes(image: np.ndarray,
                  vertices: Sequence[np.ndarray],
                  faces: np.ndarray,
                  focal_length: Tuple[float, float],
                  principal_point: Tuple[float, float],
                  colors: Optional[Sequence[Tuple[int, int, int]]] = None,
                  alpha: float = 1.0,
                  backend: str = 'auto') -> np.ndarray:
    """Draw meshes over an image seen by a pinhole camera; people occlude each other by depth.

    Args:
        image: (H, W, 3) uint8 BGR background (not modified).
        vertices: a sequence of (V, 3) float arrays (one per person), metres, in the camera frame
            (OpenCV: x right, y down, z forward). A single (V, 3) array is one person.
        faces: (F, 3) int triangle indices shared by all meshes.
        focal_length: (fx, fy) in pixels.
        principal_point: (cx, cy) in pixels.
        colors: BGR colour per mesh (default: :data:`DEFAULT_COLORS` cycled).
        alpha: opacity of the meshes over the image, 0..1.
        backend: ``'auto'`` or one of :data:`BACKENDS`; an explicit backend that is not usable here
            raises :class:`SceneRenderError`.

    Returns:
        (H, W, 3) uint8 BGR image.
    """
    image = _check_image(image)
    verts, faces, colors = _check_inputs(vertices, faces, colors)
    if not 0.0 <= float(alpha) <= 1.0:
        raise SceneRenderError(f'alpha must be in [0, 1], got {alpha}')
    (fx, fy), (cx, cy) = [float(f) for f in focal_length], [float(c) for c in principal_point]
    if fx <= 0 or fy <= 0:
        raise SceneRenderError(f'focal_length must be positive, got {(fx, fy)}')
    h, w = image.shape[:2]
    name = _resolve_backend(backend)
    if name == 'painter' and alpha >= 1.0:
        # opaque painter: fill straight over a copy of the image (keeps its anti-aliased edges)
        rgb, _ = _render(w, h, verts, faces, colors, fx, fy, cx, cy, name, background=image)
        return rgb
    rgb, cover = _render(w, h, verts, faces, colors, fx, fy, cx, cy, name)
    out = image.copy()
    sel = cover > 0
    if alpha > 0.0 and sel.any():
        # rgb is already mixed with black by the coverage: out = image (1 - alpha a) + alpha rgb.
        # Only the covered pixels are blended (a full-image float blend costs more than the render).
        a = (cover[sel] * float(alpha))[:, None]
        out[sel] = np.clip(image[sel].astype(np.float32) * (1.0 - a) + rgb[sel].astype(np.float32) * alpha
                           + 0.5, 0, 255).astype(np.uint8)
    return out


def side_view_camera(vertices: Sequence[np.ndarray], size: Tuple[int, int],
                     margin: float = 0.1) -> Tuple[np.ndarray, np.ndarray, Tuple[float, float],
                                                   Tuple[float, float]]:
    """A virtual pinhole camera that looks at all meshes from the camera frame's right (+x).

    The side camera's axes in the original camera frame: right = +z (farther people appear to the
    right), down = +y, forward = -x. It is placed on the +x side of the meshes' centre, far enough that
    every mesh fits into ``size`` with ``margin`` left around.

    Args:
        vertices: sequence of (V, 3) arrays in the camera frame.
        size: (width, height) of the side view, pixels.

    Returns:
        ``(rotation (3, 3), translation (3,), (f, f), (cx, cy))``: a camera-frame point ``p`` maps to
        ``rotation @ p + translation`` in the side camera's (OpenCV) frame.
    """
    pts = np.concatenate([np.asarray(v, np.float64).reshape(-1, 3) for v in vertices])
    rot = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    lo, hi = pts.min(0), pts.max(0)
    centre = (lo + hi) / 2
    width, height = size
    local = (pts - centre) @ rot.T                     # side-camera frame, centred
    f = float(max(width, height))
    # the nearest distance at which every point projects inside the margin:
    # |f x / (z + d)| <= usable_w  <=>  d >= f |x| / usable_w - z (and the same for y)
    usable_w, usable_h = (1 - 2 * margin) * width / 2, (1 - 2 * margin) * height / 2
    need = np.maximum(f * np.abs(local[:, 0]) / usable_w, f * np.abs(local[:, 1]) / usable_h) - local[:, 2]
    # and never closer than 0.1 m in front of the nearest point
    dist = max(float(need.max()), float(-local[:, 2].min()) + 0.1)
    trans = -rot @ centre + np.array([0.0, 0.0, dist])
    return rot, trans, (f, f), (width / 2.0, height / 2.0)


def render_side_view(vertices: Sequence[np.ndarray],
                     faces: np.ndarray,
                     size: Tuple[int, int],
                     colors: Optional[Sequence[Tuple[int, int, int]]] = None,
                     backend: str = 'auto',
                     background: Tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """All meshes seen from the camera frame's right (+x), framed to fit, depth order kept.

    Args:
        vertices: sequence of (V, 3) arrays, metres, camera frame (x right, y down, z forward).
        faces: (F, 3) int.
        size: (width, height) of the output, pixels.
        colors: BGR per mesh (default: :data:`DEFAULT_COLORS`, the same as :func:`render_meshes`).
        backend: as in :func:`render_meshes`.
        background: BGR background colour.

    Returns:
        (height, width, 3) uint8 BGR image; the original camera is on the left, depth grows rightwards.
    """
    verts, faces, colors = _check_inputs(vertices, faces, colors)
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise SceneRenderError(f'size must be positive (width, height), got {size}')
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = np.asarray(background, np.uint8)
    if not verts:
        return canvas
    rot, trans, focal, pp = side_view_camera(verts, (width, height))
    side = [v @ rot.T + trans for v in verts]
    return render_meshes(canvas, side, faces, focal, pp, colors=colors, alpha=1.0, backend=backend)


def _benchmark(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m mmpose_mpt.visualization.scene_renderer [--backend B] [--smpl DIR]``: median time of
    one overlay (two people over a 640 x 480 image) and one 320 x 480 side view."""
    import argparse
    import json
    import time
    parser = argparse.ArgumentParser(description='scene renderer timing')
    parser.add_argument('--backend', default='auto', help="'auto' or one of " + ', '.join(BACKENDS))
    parser.add_argument('--smpl', default='data/toy/body_models/smpl', help='SMPL model dir / file')
    parser.add_argument('--repeats', type=int, default=10)
    args = parser.parse_args(argv)
    from ..body_models import SMPL
    smpl = SMPL(model_path=args.smpl, gender='neutral')
    v = smpl.v_template.detach().cpu().numpy().astype(np.float64)
    v = (v - v.mean(0)) * [1.0, -1.0, -1.0]     # SMPL is y-up, facing +z: turn it to face the camera
    people = [v + [-0.4, 0.0, 4.0], v + [0.5, 0.1, 6.0]]
    image = np.full((480, 640, 3), 90, np.uint8)
    backend = _resolve_backend(args.backend)

    def median_ms(fn) -> float:
        fn()                                       # warm-up: GL context, shaders
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return round(1e3 * float(np.median(ts)), 1)

    overlay = median_ms(lambda: render_meshes(image, people, smpl.faces, (600.0, 600.0), (320.0, 240.0),
                                              backend=backend))
    side = median_ms(lambda: render_side_view(people, smpl.faces, (320, 480), backend=backend))
    print(json.dumps({'backend': backend, 'faces_per_person': int(len(smpl.faces)), 'people': 2,
                      'overlay_640x480_ms': overlay, 'side_320x480_ms': side}))


if __name__ == '__main__':
    _benchmark()
