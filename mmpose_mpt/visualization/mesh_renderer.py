"""Headless mesh rendering with numpy + OpenCV (no OpenGL needed).

A painter's-algorithm rasteriser with flat Lambertian shading: faces are sorted back to front by mean
depth and filled one by one. For a 6890-vertex SMPL mesh at 512² this takes a few tens of milliseconds,
which is plenty for quick-start pictures, training-time visualisation and tests; it needs no display,
EGL or OSMesa, so it works the same on CI, servers and laptops.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

# COCO-17 skeleton (mmpose's coco.py skeleton_info), as index pairs.
COCO17_SKELETON = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
                   (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)]


def look_at_camera(vertices: np.ndarray,
                   size: Tuple[int, int] = (512, 512),
                   view: str = 'front',
                   up_axis: str = 'y',
                   margin: float = 0.1) -> Tuple[np.ndarray, np.ndarray]:
    """Orthographic view matrix that frames a mesh.

    Args:
        vertices: (V, 3) mesh vertices, metres.
        size: (width, height) of the image in pixels.
        view: 'front' (looking along -z of the up-axis frame, i.e. at the body's front when the body
            faces +z as SMPL does) or 'side' (looking from +x).
        up_axis: 'y' (SMPL template) or 'z' (AMASS / canonical mesh frame).
        margin: fraction of the image left empty around the mesh.

    Returns:
        ``(rotation (3, 3), scale_offset (3,))``: pixel = (R @ v)[:2] * s + offset, depth = (R @ v)[2]
        (larger = farther from the viewer), packed as (s, ox, oy).
    """
    if up_axis == 'z':
        # z-up -> y-up, person facing... keeps right-handedness: rotate -90 deg about x.
        base = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)
    else:
        base = np.eye(3)
    if view == 'side':
        base = np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]], dtype=np.float64) @ base
    # Image y grows downwards and depth grows away from the viewer (who looks from +z towards -z).
    flip = np.diag([1.0, -1.0, -1.0])
    rot = flip @ base
    v = vertices @ rot.T
    lo, hi = v[:, :2].min(0), v[:, :2].max(0)
    w, h = size
    extent = np.maximum(hi - lo, 1e-6)
    s = (1 - 2 * margin) * min(w / extent[0], h / extent[1])
    centre = (lo + hi) / 2
    offset = np.array([w / 2, h / 2]) - centre * s
    return rot, np.array([s, offset[0], offset[1]])


def project_orthographic(points: np.ndarray, rotation: np.ndarray,
                         scale_offset: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) of points (N, 3) under a :func:`look_at_camera` view."""
    v = np.asarray(points, dtype=np.float64) @ rotation.T
    return v[:, :2] * scale_offset[0] + scale_offset[1:]


def two_sided_shade(tri: np.ndarray, light: np.ndarray) -> np.ndarray:
    """(F,) flat shading factors of triangles (F, 3, 3) under the unit light direction ``light``:
    two-sided Lambert over 0.35 ambient (meshes are seen from any side: side views, open toy meshes)."""
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    return 0.35 + 0.65 * np.abs(normals @ light)


def render_mesh(vertices: np.ndarray,
                faces: np.ndarray,
                size: Tuple[int, int] = (512, 512),
                image: Optional[np.ndarray] = None,
                rotation: Optional[np.ndarray] = None,
                scale_offset: Optional[np.ndarray] = None,
                intrinsics: Optional[Tuple[Sequence[float], Sequence[float]]] = None,
                color: Tuple[int, int, int] = (170, 190, 230),
                light_dir: Sequence[float] = (0.3, -0.4, -1.0),
                up_axis: str = 'y',
                view: str = 'front',
                face_colors: Optional[np.ndarray] = None) -> np.ndarray:
    """Render a triangle mesh into a BGR uint8 image.

    Two camera models:
      * orthographic framing (default): ``rotation``/``scale_offset`` from :func:`look_at_camera`
        (computed from the mesh when not given);
      * perspective: ``intrinsics=((fx, fy), (cx, cy))`` with ``vertices`` already in the camera frame
        (x right, y down, z forward, metres), e.g. a virtual or real camera.

    Args:
        vertices: (V, 3) float.
        faces: (F, 3) int vertex indices.
        size: (width, height) when ``image`` is None.
        image: optional (H, W, 3) uint8 background, drawn over (a copy is returned).
        color: BGR base colour.
        light_dir: direction the light travels in view coordinates (x right, y down, z away).
        face_colors: optional (F, 3) BGR base colour per face (instead of ``color``).

    Returns:
        (H, W, 3) uint8 BGR image.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if image is None:
        canvas = np.full((size[1], size[0], 3), 255, dtype=np.uint8)
    else:
        canvas = image.copy()
        size = (canvas.shape[1], canvas.shape[0])

    if intrinsics is not None:
        (fx, fy), (cx, cy) = intrinsics
        z = np.maximum(vertices[:, 2], 1e-6)
        pix = np.stack([fx * vertices[:, 0] / z + cx, fy * vertices[:, 1] / z + cy], axis=1)
        view_v = vertices
        depth = vertices[:, 2]
    else:
        if rotation is None or scale_offset is None:
            rotation, scale_offset = look_at_camera(vertices, size, view=view, up_axis=up_axis)
        view_v = vertices @ rotation.T
        pix = project_orthographic(vertices, rotation, scale_offset)
        depth = view_v[:, 2]

    light = np.asarray(light_dir, dtype=np.float64)
    shade = two_sided_shade(view_v[faces], light / np.linalg.norm(light))
    order = np.argsort(-depth[faces].mean(axis=1))          # far to near
    pts = np.round(pix[faces] * 16).astype(np.int32)        # 4 fractional bits for smooth edges
    if face_colors is not None:
        base = np.asarray(face_colors, dtype=np.float64).reshape(len(faces), 3)
    else:
        base = np.asarray(color, dtype=np.float64)[None]
    front = depth[faces].min(axis=1) > (1e-6 if intrinsics is not None else -np.inf)
    # colours for all faces at once (per-face numpy calls dominated the loop's time)
    colors = np.clip(base * shade[:, None], 0, 255).astype(np.int64).tolist()
    for i in order[front[order]]:
        cv2.fillConvexPoly(canvas, pts[i], colors[i], lineType=cv2.LINE_AA, shift=4)
    return canvas


def draw_keypoints(image: np.ndarray,
                   keypoints: np.ndarray,
                   visible: Optional[np.ndarray] = None,
                   skeleton: Sequence[Tuple[int, int]] = COCO17_SKELETON,
                   color: Tuple[int, int, int] = (0, 0, 255),
                   radius: int = 4) -> np.ndarray:
    """Draw 2D keypoints (K, 2) in pixels and their skeleton on a copy of ``image``."""
    out = image.copy()
    kp = np.asarray(keypoints, dtype=np.float64)
    vis = np.ones(len(kp), bool) if visible is None else np.asarray(visible, bool)
    for a, b in skeleton:
        if a < len(kp) and b < len(kp) and vis[a] and vis[b]:
            cv2.line(out, tuple(int(round(v)) for v in kp[a]), tuple(int(round(v)) for v in kp[b]),
                     (60, 60, 60), 2, cv2.LINE_AA)
    for k, (x, y) in enumerate(kp):
        if vis[k]:
            cv2.circle(out, (int(round(x)), int(round(y))), radius, color, -1, cv2.LINE_AA)
    return out
