"""Toy mesh-image sets: rendered stand-ins for Human3.6M / 3DPW / COCO in their annotation formats.

The licensed image sets cannot ship with the project, so the embedded default renders its own: the toy
SMPL-format body (or a real SMPL model when one is given) posed in *held-out* toy motion (the ``ToyVal``
sub-dataset of :func:`~mmpose_mpt.datasets.toy_mocap.make_toy_mocap`, the split
``amass_index.DEFAULT_SPLITS`` holds out for validation, generated with the image set's own seed, 1 by
default, not the pre-training's seed 0), seen by perspective cameras placed like Human3.6M's (3-7 m away,
all round the person, small elevation, focal length ~1145 px per 1000 px of image), the person not
always centred and sometimes cut by the image border, over procedural scenes (a floor and a wall in the
camera's perspective, gradients, clutter rectangles, noise textures, blur) with a varied light direction
and body colour.

Layout under ``out_dir`` (image paths relative to ``out_dir``, the image prefix):

* ``images/<split>/<NNNNNN>.jpg``: the images (JPEG);
* ``spin/<split>.npz`` (SPIN), ``humandata/<split>.npz`` (mmhuman3d HumanData), ``tsv/<split>.yaml`` +
  ``tsv/<split>.{img,label,hw,linelist}.tsv`` (METRO, the same JPEG bytes inside), written by
  :mod:`mmpose_mpt.datasets.formats`;
* ``coco/person_keypoints_<split>.json``: the 2D labels in COCO's person-keypoints layout (for training
  a 2D pose network with mmpose's own ``CocoDataset``, the toy stand-in for a COCO-trained one);
* ``scenes/<split>.npz``: what else renders each image (camera, placement, scene seed), see
  :func:`make_toy_images`;
* ``toy_images.json``: the manifest, written last: its presence (with the same settings) marks a
  complete set, which a later call reuses.

Ground truth per image (the labels render the image, see ``tests/test_toy_images.py``):
``smpl_pose`` (72,) with the global orientation in the camera frame and ``smpl_betas`` (10,), such that
``SMPL(pose, betas).vertices + transl`` is the rendered camera-frame mesh (checked while generating);
``keypoints_3d_j24`` (24, 4) camera-frame metres = :func:`~mmpose_mpt.body_models.j24.j24_from_regressed`
of the rendered mesh's Human3.6M / COCO regressions; ``keypoints_2d_j24`` (24, 3) their pinhole
projection (conf 0 outside the image); ``center`` / ``scale`` from the visible 2D joints' box, ``scale =
1.2 * max(w, h) / 200`` as 3DPW's labels; ``has_*`` = 1; gender ``'n'``.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import time
import zlib
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..body_models.j24 import J24_NAMES, J24_PELVIS_INDEX, j24_from_regressed
from ..utils.cli import MPTUserError
from .amass_index import DEFAULT_SPLITS, amass_to_smpl_pose
from .toy_mocap import axis_angle_to_matrix, make_toy_mocap, matrix_to_axis_angle

__all__ = ['TOY_IMAGES_VERSION', 'TOY_IMAGE_FORMATS', 'J24_SKELETON', 'ToyImagesError', 'make_toy_images',
           'render_toy_background', 'render_toy_image', 'scene_of', 'visible_faces', 'draw_contact_sheet']

TOY_IMAGES_VERSION = 'mmpose-mpt-toy-images-2'  # bump when the rendering changes: older sets are remade
TOY_IMAGE_FORMATS = ('tsv', 'spin', 'humandata', 'coco')
MANIFEST_NAME = 'toy_images.json'
HELD_OUT_DATASET = 'ToyVal'
assert HELD_OUT_DATASET in DEFAULT_SPLITS['val']  # the toy motion split pre-training never trains on

# J24 bones for drawing (indices into J24_NAMES); slots 13 / 15 (no source in mesh-regressed labels) left out.
J24_SKELETON: List[Tuple[int, int]] = [
    (0, 1), (1, 2), (2, 14), (3, 14), (3, 4), (4, 5),      # right leg, left leg -> pelvis
    (14, 16), (16, 12), (12, 17), (17, 18),                # pelvis - spine - neck - jaw - head
    (12, 8), (8, 7), (7, 6), (12, 9), (9, 10), (10, 11),   # right arm, left arm
    (17, 19), (19, 20), (19, 21), (20, 22), (21, 23)]      # face
assert all(max(a, b) < len(J24_NAMES) for a, b in J24_SKELETON)

# Human3.6M's S1 cameras: focal lengths ~1145-1150 px and principal points within ~2 % of the centre
# of 1000 px wide images (mmpose_mpt.cameras.h36m_cameras); scaled here to the longer image side.
_H36M_FOCAL_PER_PX = 1147.0 / 1000.0
_JPEG_QUALITY = 90
_SMPL_CHUNK = 512  # meshes per body-model call (bounds memory for large sets: 512 x 6890 x 3 floats)


class ToyImagesError(MPTUserError, ValueError):
    """Bad arguments to :func:`make_toy_images` (one line naming the problem)."""


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------
def _sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    # one generator per image, keyed by the split's name (not its position) and the image index: image i
    # is the same whatever the dict order or the number of images asked for
    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) smallest rotation taking the unit vector a to the unit vector b."""
    a, b = _unit(a), _unit(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-12:
        return np.eye(3)
    return axis_angle_to_matrix(axis / s * np.arctan2(s, c))


def _look_at(C: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World (z-up) -> camera (x right, y down, z forward) rotation of a camera at C looking at target."""
    z = _unit(target - C)
    x = _unit(np.cross(z, np.array([0.0, 0.0, 1.0])))
    y = np.cross(z, x)
    return np.stack([x, y, z])


def _project(points: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(..., 2) pixels of camera-frame points (..., 3) (pinhole, no distortion)."""
    return f * points[..., :2] / np.maximum(points[..., 2:], 1e-6) + c


def _inside(px: np.ndarray, z: np.ndarray, size: Tuple[int, int], margin: float = 0.0) -> np.ndarray:
    W, H = size
    return ((px[..., 0] >= margin) & (px[..., 0] <= W - 1 - margin) & (px[..., 1] >= margin)
            & (px[..., 1] <= H - 1 - margin) & (z > 1e-3))


def _hsv_color(rng: np.random.Generator, sat=(0.15, 0.8), val=(0.3, 0.95)) -> np.ndarray:
    """A random colour, float RGB in [0, 1]."""
    hsv = np.uint8([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64) / 255.0


def _value_noise(rng: np.random.Generator, size: Tuple[int, int], cells: int, octaves: int = 3) -> np.ndarray:
    """(H, W) smooth noise in about [-1, 1]: random grids upsampled (cubic), octaves summed."""
    W, H = size
    out = np.zeros((H, W), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = cells * 2**o
        grid = rng.uniform(-1, 1, (max(2, int(n * H / W) + 2), n + 2)).astype(np.float32)
        out += amp * cv2.resize(grid, (W, H), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    return out / total


# --------------------------------------------------------------------------------------------------
# Procedural scenes
# --------------------------------------------------------------------------------------------------
def scene_of(scenes: Mapping[str, np.ndarray], i: int) -> Dict[str, np.ndarray]:
    """Row ``i`` of a ``scenes/<split>.npz`` file (or of the dict :func:`make_toy_images` builds) as the
    ``scene`` argument of :func:`render_toy_background` / :func:`render_toy_image`."""
    keys = ('cam_f', 'cam_c', 'cam_R', 'cam_C', 'floor_z', 'person_dist', 'scene_seed', 'body_color',
            'light_dir', 'transl')
    return {k: np.asarray(scenes[k][i]) for k in keys}


def _floor_texture(rng, X, Y, style: int) -> np.ndarray:
    """(H, W, 3) floor colours at world floor coordinates (X, Y) metres."""
    a, b = _hsv_color(rng, val=(0.25, 0.9)), _hsv_color(rng, val=(0.2, 0.8))
    if style == 0:  # checkerboard tiles
        s = rng.uniform(0.4, 1.2)
        t = ((np.floor(X / s) + np.floor(Y / s)) % 2)[..., None]
        return a * (1 - t) + b * t
    if style == 1:  # planks: stripes in a random direction, per-plank brightness, dark seams
        th = rng.uniform(0, np.pi)
        w = rng.uniform(0.12, 0.35)
        q = (X * np.cos(th) + Y * np.sin(th)) / w
        k = np.floor(q)
        jitter = 0.8 + 0.4 * ((np.sin(k * 12.9898) * 43758.5453) % 1.0)
        seam = (q - k) < 0.06
        col = a[None, None] * jitter[..., None]
        col[seam] *= 0.55
        return col
    if style == 2:  # tiles with grout lines
        s = rng.uniform(0.3, 0.9)
        fx, fy = (X / s) % 1.0, (Y / s) % 1.0
        line = ((fx < 0.05) | (fy < 0.05))[..., None]
        return a * (1 - line) + (0.5 * a + 0.3) * line
    # plain (carpet / concrete): a colour with large-scale blotches
    blotch = 0.15 * np.sin(X * rng.uniform(0.5, 2)) * np.cos(Y * rng.uniform(0.5, 2))
    return a[None, None] * (1.0 + blotch[..., None])


def _wall_texture(rng, A, B, style: int) -> np.ndarray:
    """(H, W, 3) wall colours at wall coordinates A (along the wall) and B (height), metres."""
    a = _hsv_color(rng, sat=(0.05, 0.6), val=(0.35, 0.95))
    if style == 0:  # bricks
        bw, bh = rng.uniform(0.22, 0.4), rng.uniform(0.07, 0.15)
        row = np.floor(B / bh)
        q = A / bw + 0.5 * (row % 2)
        mortar = (((B / bh) % 1.0) < 0.12) | ((q % 1.0) < 0.06)
        k = np.floor(q) * 7.0 + row * 13.0
        jitter = 0.85 + 0.3 * ((np.sin(k * 12.9898) * 43758.5453) % 1.0)
        col = a[None, None] * jitter[..., None]
        col[mortar] = 0.75 * col[mortar] + 0.2
        return col
    if style == 1:  # wallpaper stripes
        w = rng.uniform(0.15, 0.4)  # a few px even far away: no moire
        b = _hsv_color(rng, sat=(0.05, 0.5), val=(0.4, 0.95))
        t = ((A / w) % 2.0 < 1.0)[..., None]
        return a * t + b * (1 - t)
    if style == 2:  # large panels
        pw = rng.uniform(0.8, 2.0)
        seam = ((A / pw) % 1.0) < 0.02
        col = np.broadcast_to(a, A.shape + (3,)).copy()
        col[seam] *= 0.6
        return col
    return np.broadcast_to(a, A.shape + (3,)).copy()  # plain paint


def render_toy_background(image_size: Tuple[int, int], scene: Mapping[str, np.ndarray]) -> np.ndarray:
    """The procedural background of one toy image, a deterministic function of its scene row.

    Args:
        image_size: (W, H) pixels.
        scene: see :func:`scene_of`: ``cam_f`` (2,), ``cam_c`` (2,) pixels; ``cam_R`` (3, 3) world ->
            camera rotation, ``cam_C`` (3,) camera centre in the z-up world (metres); ``floor_z`` the
            floor height (the body's lowest vertex); ``person_dist`` camera-pelvis distance (m);
            ``scene_seed`` (everything else is drawn from it).

    Returns:
        (H, W, 3) uint8 BGR image: sky / far gradient, optionally a floor and a wall seen in the camera's
        perspective (with windows / posters / doors), clutter rectangles, noise texture, a lighting
        gradient, blur and pixel noise.
    """
    W, H = int(image_size[0]), int(image_size[1])
    rng = np.random.default_rng(int(scene['scene_seed']))
    f, c = np.asarray(scene['cam_f'], float), np.asarray(scene['cam_c'], float)
    R, C = np.asarray(scene['cam_R'], float), np.asarray(scene['cam_C'], float)
    floor_z = float(scene['floor_z'])
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    rays = np.stack([(u - c[0]) / f[0], (v - c[1]) / f[1], np.ones_like(u)], -1) @ R  # world directions
    d = _unit(rays)
    # far field: a gradient over the ray elevation (so the horizon agrees with the camera)
    top, horizon = _hsv_color(rng, val=(0.5, 1.0)), _hsv_color(rng, sat=(0.0, 0.4), val=(0.5, 1.0))
    t = np.clip(d[..., 2] * rng.uniform(1.5, 4.0) + 0.5, 0, 1)[..., None]
    img = horizon * (1 - t) + top * t
    abstract = rng.random() < 0.2
    hit = np.full((H, W), np.inf)
    if abstract:  # image-space gradient at a random angle instead of planes
        ang = rng.uniform(0, 2 * np.pi)
        g = ((u - W / 2) * np.cos(ang) + (v - H / 2) * np.sin(ang)) / max(W, H) + 0.5
        img = _hsv_color(rng) * (1 - g[..., None]) + _hsv_color(rng) * g[..., None]
    else:
        if rng.random() < 0.85:  # floor z = floor_z
            with np.errstate(divide='ignore', invalid='ignore'):
                tf = (floor_z - C[2]) / d[..., 2]
            on = (d[..., 2] < -1e-6) & (tf > 0)
            tf = np.where(on, tf, np.inf)
            X = C[0] + np.where(on, tf, 0) * d[..., 0]
            Y = C[1] + np.where(on, tf, 0) * d[..., 1]
            col = _floor_texture(rng, X, Y, int(rng.integers(4)))
            fog = (1 - np.exp(-np.where(on, tf, 0) / rng.uniform(8, 40)))[..., None]
            col = col * (1 - fog) + horizon * fog
            img = np.where(on[..., None], col, img)
            hit = tf
        if rng.random() < 0.65:  # a wall behind the person, roughly facing the camera
            h = _unit(np.array([R[2, 0], R[2, 1], 0.0]))
            ang = rng.uniform(-0.6, 0.6)
            h = np.array([h[0] * np.cos(ang) - h[1] * np.sin(ang), h[0] * np.sin(ang) + h[1] * np.cos(ang), 0])
            n = -h  # wall normal, towards the camera
            # a plane at least 1 m behind the person (who is within person_dist of the camera)
            Q = C + h * (float(scene['person_dist']) + rng.uniform(1.0, 5.0))
            with np.errstate(divide='ignore', invalid='ignore'):
                tw = ((Q - C) @ n) / (d @ n)
            on = (d @ n < -1e-6) & (tw > 0) & (tw < hit)
            tw = np.where(on, tw, 0)
            P = C + tw[..., None] * d
            e = np.cross(np.array([0, 0, 1.0]), n)
            A, B = (P - Q) @ e, P[..., 2] - floor_z
            height = rng.uniform(2.2, 4.0) if rng.random() < 0.6 else np.inf
            on &= B < height
            col = _wall_texture(rng, A, B, int(rng.integers(4)))
            for _ in range(int(rng.integers(0, 5))):  # windows, posters, doors
                a0 = rng.uniform(-4, 4)
                if rng.random() < 0.3:  # door
                    w_, b0, b1 = rng.uniform(0.8, 1.1), 0.0, rng.uniform(1.9, 2.2)
                else:
                    w_, b0 = rng.uniform(0.3, 1.6), rng.uniform(0.4, 1.6)
                    b1 = b0 + rng.uniform(0.3, 1.2)
                m = (A > a0) & (A < a0 + w_) & (B > b0) & (B < b1)
                col[m] = _hsv_color(rng, val=(0.2, 1.0))
            shade = rng.uniform(0.75, 1.1)
            img = np.where(on[..., None], col * shade, img)
    # clutter: flat or two-tone rectangles and discs in image space (objects in the scene)
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 6))):
            x0, y0 = rng.uniform(-0.1, 1.0) * W, rng.uniform(0.0, 1.0) * H
            w_, h_ = rng.uniform(0.05, 0.35) * W, rng.uniform(0.05, 0.5) * H
            m = (u >= x0) & (u < x0 + w_) & (v >= y0) & (v < y0 + h_)
            if rng.random() < 0.3:
                m = ((u - x0) / w_ * 2 - 1)**2 + ((v - y0) / h_ * 2 - 1)**2 < 1
            alpha = rng.uniform(0.6, 1.0)
            img = np.where(m[..., None], alpha * _hsv_color(rng) + (1 - alpha) * img, img)
    if rng.random() < 0.5:  # texture / dirt
        noise = _value_noise(rng, (W, H), int(rng.integers(3, 12)))
        img = img * (1 + rng.uniform(0.05, 0.3) * noise[..., None])
    # lighting: overall level and a gradient across the image
    ang = rng.uniform(0, 2 * np.pi)
    grad = ((u - W / 2) * np.cos(ang) + (v - H / 2) * np.sin(ang)) / max(W, H)
    img = img * rng.uniform(0.7, 1.15) * (1 + rng.uniform(0, 0.5) * grad[..., None])
    img8 = np.clip(img * 255, 0, 255).astype(np.uint8)[..., ::-1]  # RGB -> BGR
    sigma = rng.uniform(0.4, 1.6) if rng.random() < 0.6 else 0.0  # defocus (the person stays sharp)
    if sigma > 0:
        img8 = cv2.GaussianBlur(img8, (0, 0), sigma)
    noise_std = rng.uniform(0, 5)
    if noise_std > 0.5:
        img8 = np.clip(img8 + rng.normal(0, noise_std, img8.shape), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img8)


def visible_faces(vertices: np.ndarray, faces: np.ndarray, return_mask: bool = False) -> np.ndarray:
    """The faces of a closed, outward-oriented mesh that face a camera at the origin (camera frame)
    (or, with ``return_mask``, the (F,) bool mask of them).

    For a closed mesh (SMPL, and the toy: a union of closed tubes) a back-facing triangle is always
    hidden behind a front-facing one, so culling them changes no pixel and halves the painter's work.
    """
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    mask = np.einsum('fc,fc->f', n, tri.mean(1)) < 0
    return mask if return_mask else faces[mask]


# SMPL joints whose skin is the body's left side (hip, knee, ankle, foot, collar, shoulder, elbow,
# wrist, hand) and the head joint
SMPL_LEFT_JOINTS = (1, 4, 7, 10, 13, 16, 18, 20, 22)
SMPL_HEAD_JOINT = 15


def body_part_labels(smpl, faces: np.ndarray) -> np.ndarray:
    """(F,) face labels of the toy body: 0 body, 1 the left side's limbs, 2 the front of the head (the
    face). A one-colour, left-right symmetric body looks the same from the front and from the back,
    mirrored: nothing in its image tells a 2D network the left wrist from the right one (a person's
    face, clothes and anatomy do), so it learns neither. Which part a vertex belongs to: its largest
    skinning weight; the face: head vertices in front of the head joint (SMPL's rest pose faces +z); a
    face takes its first vertex's label (faces straddle parts only at seams)."""
    part = np.asarray(smpl.body.lbs_weights.detach().cpu().numpy()).argmax(1)     # (V,)
    v = np.asarray(smpl.v_template.detach().cpu().numpy())
    head = part == SMPL_HEAD_JOINT
    head_z = v[head, 2].mean() if head.any() else 0.0
    labels = np.where(head & (v[:, 2] > head_z + 0.02), 2, np.isin(part, SMPL_LEFT_JOINTS).astype(int))
    return labels[np.asarray(faces)[:, 0]]


def body_part_colors(labels: np.ndarray, color: Sequence[int]) -> np.ndarray:
    """(F, 3) BGR face colours for :func:`body_part_labels`: ``color``, the left side's limbs in another,
    darker hue and the face dark."""
    base = np.asarray(color, np.float64)
    left_col = np.clip(0.7 * np.roll(base, 1), 0, 255)                # another hue (B G R -> R B G), darker
    face_col = np.clip(0.25 * base, 0, 255)
    return np.stack([base, left_col, face_col])[labels]


def render_toy_image(vertices_cam: np.ndarray, faces: np.ndarray, image_size: Tuple[int, int],
                     scene: Mapping[str, np.ndarray], background: Optional[np.ndarray] = None,
                     face_colors: Optional[np.ndarray] = None) -> np.ndarray:
    """One toy image: the camera-frame mesh drawn over its background.

    Args:
        vertices_cam: (V, 3) metres, camera frame (x right, y down, z forward).
        faces: (F, 3) vertex ids (outward oriented).
        image_size: (W, H).
        scene: see :func:`scene_of` (``cam_f``, ``cam_c``, ``body_color`` BGR, ``light_dir``, ...).
        background: the result of :func:`render_toy_background` if already computed.
        face_colors: (F, 3) BGR per face (:func:`body_part_colors`); None: ``body_color`` everywhere.

    Returns:
        (H, W, 3) uint8 BGR.
    """
    from ..visualization.mesh_renderer import render_mesh
    if background is None:
        background = render_toy_background(image_size, scene)
    f, c = np.asarray(scene['cam_f'], float), np.asarray(scene['cam_c'], float)
    keep = visible_faces(np.asarray(vertices_cam, float), faces, return_mask=True)
    return render_mesh(vertices_cam, np.asarray(faces)[keep], image=background,
                       intrinsics=((f[0], f[1]), (c[0], c[1])),
                       color=tuple(int(x) for x in scene['body_color']), light_dir=scene['light_dir'],
                       face_colors=None if face_colors is None else np.asarray(face_colors)[keep])


# --------------------------------------------------------------------------------------------------
# Held-out motion
# --------------------------------------------------------------------------------------------------
def _held_out_motion(splits: Sequence[str], seed: int, tmp_root: str,
                     seconds: float = 4.0) -> Dict[str, List[dict]]:
    """Per split, the ToyVal sequences of ``make_toy_mocap(seed=seed)`` (disjoint subjects per split),
    ``seconds`` long at 30 fps.

    Returns:
        {split: [dict(name, pose (T, 72) z-up world axis-angle, trans (T, 3), betas (10,))]}.
    """
    S = len(splits)
    amass = osp.join(tmp_root, 'amass')
    # 30 sequences per split -> 10 ToyVal sequences (5 subjects x 2 motions) per split, all five motions
    make_toy_mocap(amass, num_sequences=30 * S, seconds=seconds, fps=30.0, seed=seed)
    out: Dict[str, List[dict]] = {s: [] for s in splits}
    for path in sorted(glob.glob(osp.join(amass, HELD_OUT_DATASET, 'subject_*', '*_poses.npz'))):
        sub = int(osp.basename(osp.dirname(path)).split('_')[1])
        with np.load(path) as z:
            seq = dict(name=osp.relpath(path, amass), pose=amass_to_smpl_pose(z['poses']), trans=z['trans'],
                       betas=np.asarray(z['betas'][:10], np.float64))
        out[splits[sub % S]].append(seq)
    return out


# --------------------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------------------
def _place_camera(rng: np.random.Generator, j24_world: np.ndarray, conf: np.ndarray, pelvis: np.ndarray,
                  floor_z: float, size: Tuple[int, int]) -> dict:
    """A Human3.6M-like camera for one body (world z-up): returns f, c, R (world -> camera), C, cut."""
    W, H = size
    base = _H36M_FOCAL_PER_PX * max(W, H)
    f0 = base * rng.uniform(0.85, 1.15)
    f = np.array([f0, f0 * rng.uniform(0.997, 1.003)])
    c = np.array([W / 2, H / 2]) + rng.uniform(-0.02, 0.02, 2) * max(W, H)
    want_cut = rng.random() < 0.2
    labelled = conf > 0
    best = None
    for attempt in range(40):
        if attempt == 30:  # a cut placement that does not work out: place it whole instead
            want_cut = False
        d = rng.uniform(3.0, 7.0)
        az = rng.uniform(0, 2 * np.pi)
        el = np.deg2rad(rng.uniform(-5.0, 20.0))
        C = pelvis + d * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        if C[2] < floor_z + 0.3:  # keep the camera above the floor
            C[2] = floor_z + 0.3
        R = _look_at(C, pelvis)
        roll = np.deg2rad(rng.normal(0, 2.0))
        R = axis_angle_to_matrix(np.array([0, 0, roll])) @ R
        if want_cut:
            target = np.array([rng.uniform(0.05, 0.95) * W, rng.uniform(0.1, 0.9) * H])
        else:
            target = np.array([rng.uniform(0.3, 0.7) * W, rng.uniform(0.4, 0.6) * H])
        # turn the camera so that the pelvis projects at the target pixel (person not always centred)
        R = _rotation_between(np.array([0, 0, 1.0]), np.array([*(target - c) / f, 1.0])) @ R
        Jc = (j24_world - C) @ R.T
        inside = _inside(_project(Jc, f, c), Jc[:, 2], size, margin=1.0)
        pelvis_in = _inside(_project(((pelvis - C) @ R.T)[None], f, c), np.array([1.0]), size, margin=4.0)[0]
        n_vis, all_in = int((inside & labelled).sum()), bool(inside[labelled].all())
        ok = pelvis_in and ((not all_in and n_vis >= 10) if want_cut else all_in)
        cand = dict(f=f, c=c, R=R, C=C, cut=not all_in, dist=d)
        if ok:
            return cand
        if pelvis_in and (best is None or n_vis > best[0]):
            best = (n_vis, cand)
    if best is None:  # pragma: no cover - the pelvis is inside for any centred target
        raise RuntimeError('toy images: no camera placement found')
    return best[1]


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------
def _body_model(body_model_dir: Optional[str], smpl_path: Optional[str]):
    from ..body_models import SMPL
    if smpl_path is not None:
        return SMPL(smpl_path, gender='neutral')
    if body_model_dir is None:
        raise ToyImagesError('make_toy_images: give body_model_dir (the toy body models, e.g. '
                             'data/toy/body_models) or smpl_path')
    smpl_dir = osp.join(body_model_dir, 'smpl')
    h36m = osp.join(body_model_dir, 'J_regressor_h36m_correct.npy')
    if not osp.isdir(smpl_dir):
        raise ToyImagesError(f'{body_model_dir}: no smpl/ directory with the toy SMPL-format body model '
                             f'(python tools/make_toy_body_model.py {osp.dirname(osp.abspath(body_model_dir))})')
    return SMPL(smpl_dir, gender='neutral', h36m_regressor=h36m if osp.isfile(h36m) else None)


def _smpl_forward(smpl, pose: np.ndarray, betas: np.ndarray, transl: Optional[np.ndarray] = None):
    """Batched body-model forward (chunks of _SMPL_CHUNK): vertices (N, V, 3) float64, metres."""
    verts = []
    with torch.no_grad():
        for s in range(0, len(pose), _SMPL_CHUNK):
            sl = slice(s, s + _SMPL_CHUNK)
            p = torch.as_tensor(pose[sl], dtype=smpl.dtype)
            out = smpl(betas=torch.as_tensor(betas[sl], dtype=smpl.dtype), body_pose=p[:, 3:],
                       global_orient=p[:, :3],
                       transl=None if transl is None else torch.as_tensor(transl[sl], dtype=smpl.dtype))
            verts.append(out['vertices'].double().numpy())
    return np.concatenate(verts)


def _j24(smpl, vertices: np.ndarray) -> np.ndarray:
    v = torch.as_tensor(vertices, dtype=smpl.dtype)
    with torch.no_grad():
        return j24_from_regressed(smpl.regress(v, 'h36m').numpy(), smpl.regress(v, 'coco').numpy())


def _generate_split(smpl, split: str, num: int, motion: List[dict], size: Tuple[int, int], seed: int,
                    images_dir: str, img_prefix: str):
    """Render one split into ``images_dir``: returns (records, jpeg bytes, scenes dict)."""
    W, H = size
    rngs = [_sample_rng(seed, split, i) for i in range(num)]
    seq = np.array([r.integers(len(motion)) for r in rngs])
    frame = np.array([r.integers(len(motion[s]['pose'])) for r, s in zip(rngs, seq)])
    pose_w = np.stack([motion[s]['pose'][t] for s, t in zip(seq, frame)])
    trans_w = np.stack([motion[s]['trans'][t] for s, t in zip(seq, frame)])
    betas = np.stack([motion[s]['betas'] for s in seq])
    source = np.array([f'{motion[s]["name"]}#{t}' for s, t in zip(seq, frame)])
    nb = min(10, smpl.num_betas)
    betas = np.concatenate([betas[:, :nb], np.zeros((num, 10 - nb))], 1) if nb < 10 else betas[:, :10]

    # 1. the body in the z-up world (one batched call), its joints, floor height and pelvis
    v_world = _smpl_forward(smpl, pose_w, betas, trans_w)
    j24_world = _j24(smpl, v_world)
    floor_z = v_world[..., 2].min(1)
    pelvis = j24_world[:, J24_PELVIS_INDEX, :3].astype(np.float64)

    # 2. cameras
    cams = [_place_camera(rngs[i], j24_world[i, :, :3].astype(np.float64), j24_world[i, :, 3], pelvis[i],
                          floor_z[i], size) for i in range(num)]
    cam_R = np.stack([cm['R'] for cm in cams])
    cam_C = np.stack([cm['C'] for cm in cams])
    cam_f = np.stack([cm['f'] for cm in cams])
    cam_c = np.stack([cm['c'] for cm in cams])
    v_cam = np.einsum('nij,nvj->nvi', cam_R, v_world - cam_C[:, None])

    # 3. camera-frame SMPL parameters: global orient R @ R_root; SMPL(pose, betas) + transl == v_cam
    pose_c = pose_w.copy()
    pose_c[:, :3] = matrix_to_axis_angle(cam_R @ axis_angle_to_matrix(pose_w[:, :3]))
    pose_c = pose_c.astype(np.float32)
    v0 = _smpl_forward(smpl, pose_c, betas.astype(np.float32))
    transl = (v_cam - v0).mean(1)
    err = np.abs(v0 + transl[:, None] - v_cam).max()
    if not err < 1e-4:  # the labels must render the image: never write a set where they do not
        raise RuntimeError(f'toy images ({split}): SMPL(camera-frame pose) + transl differs from the '
                           f'rendered mesh by {err:.2e} m')

    # 4. labels from the rendered mesh
    j3d = _j24(smpl, v_cam)
    px = _project(j3d[..., :3].astype(np.float64), cam_f[:, None], cam_c[:, None])
    inside = _inside(px, j3d[..., 2], size)
    j2d = np.concatenate([px, (j3d[..., 3] * inside)[..., None]], -1).astype(np.float32)
    vis = j2d[..., 2] > 0
    lo = np.where(vis[..., None], px, np.inf).min(1)
    hi = np.where(vis[..., None], px, -np.inf).max(1)
    center = ((lo + hi) / 2).astype(np.float32)
    scale = (1.2 * (hi - lo).max(1) / 200).astype(np.float32)

    # 5. scenes and images (per image)
    scenes = dict(cam_f=cam_f, cam_c=cam_c, cam_R=cam_R, cam_C=cam_C, floor_z=floor_z,
                  scene_seed=np.array([r.integers(2**62) for r in rngs]), transl=transl,
                  body_color=np.zeros((num, 3), np.uint8), light_dir=np.zeros((num, 3)),
                  person_dist=np.array([cm['dist'] for cm in cams]), cut=np.array([cm['cut'] for cm in cams]),
                  source=source, img_name=np.array([f'{img_prefix}/{i:06d}.jpg' for i in range(num)]),
                  image_size=np.array([W, H]))
    records, jpegs = [], []
    part_labels = body_part_labels(smpl, smpl.faces)   # once: the same body topology for every image
    for i in range(num):
        scene_rng = rngs[i]
        sc = scene_of(scenes, i)
        bg = render_toy_background(size, sc)
        # light direction (two-sided shading: its sign along the view axis does not matter; |z| >= 0.3
        # keeps the body's front from being lit only at grazing angles); a colour contrasting the backdrop
        light = _unit(np.array([scene_rng.uniform(-1, 1), scene_rng.uniform(-1, 1),
                                scene_rng.choice([-1, 1]) * scene_rng.uniform(0.3, 1)]))
        x0, y0 = np.clip(np.floor(lo[i]), 0, [W - 1, H - 1]).astype(int)
        x1, y1 = np.clip(np.ceil(hi[i]), 0, [W - 1, H - 1]).astype(int)
        backdrop = bg[y0:y1 + 1, x0:x1 + 1].reshape(-1, 3).mean(0)
        best = (-1.0, None)
        for _ in range(50):  # the renderer shades faces 0.35..1 x the colour: contrast at half and full
            col = (_hsv_color(scene_rng, sat=(0.1, 0.9), val=(0.35, 1.0)) * 255)[::-1]  # BGR
            contrast = min(np.linalg.norm(k * col - backdrop) for k in (0.5, 1.0))
            if contrast > best[0]:
                best = (contrast, col)
            if contrast > 70:
                break
        col = best[1]
        scenes['light_dir'][i], scenes['body_color'][i] = light, np.round(col)
        sc.update(light_dir=light, body_color=scenes['body_color'][i])
        img = render_toy_image(v_cam[i], smpl.faces, size, sc, background=bg,
                               face_colors=body_part_colors(part_labels, col))
        ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        assert ok
        data = buf.tobytes()
        with open(osp.join(images_dir, f'{i:06d}.jpg'), 'wb') as fh:
            fh.write(data)
        jpegs.append(data)
        records.append(dict(img_name=str(scenes['img_name'][i]), center=center[i], scale=scale[i],
                            keypoints_2d_j24=j2d[i], keypoints_3d_j24=j3d[i].astype(np.float32),
                            smpl_pose=pose_c[i], smpl_betas=betas[i].astype(np.float32), has_smpl=1.0,
                            has_2d_joints=1.0, has_3d_joints=1.0, gender='n'))
    return records, jpegs, scenes


def _fingerprint(smpl) -> str:
    """Content hash of the body model and regressors (a set made with other models is not reused)."""
    h = hashlib.sha1()
    with open(smpl.model_file, 'rb') as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b''):
            h.update(chunk)
    for name in ('coco_regressor', 'h36m_regressor'):
        t = getattr(smpl, name)
        h.update(b'none' if t is None else t.double().cpu().numpy().tobytes())
    return h.hexdigest()


def _expected_files(out_dir: str, splits: Mapping[str, int], formats: Sequence[str]) -> Dict[str, Dict[str, str]]:
    paths: Dict[str, Dict[str, str]] = {}
    for s in splits:
        p = dict(images=osp.join(out_dir, 'images', s), scenes=osp.join(out_dir, 'scenes', f'{s}.npz'))
        if 'spin' in formats:
            p['spin'] = osp.join(out_dir, 'spin', f'{s}.npz')
        if 'humandata' in formats:
            p['humandata'] = osp.join(out_dir, 'humandata', f'{s}.npz')
        if 'tsv' in formats:
            p['tsv'] = osp.join(out_dir, 'tsv', f'{s}.yaml')
        if 'coco' in formats:
            p['coco'] = osp.join(out_dir, 'coco', f'person_keypoints_{s}.json')
        paths[s] = p
    return paths


def _complete(out_dir: str, settings: dict, splits: Mapping[str, int]) -> Optional[dict]:
    path = osp.join(out_dir, MANIFEST_NAME)
    try:
        with open(path) as fh:
            man = json.load(fh)
    except (OSError, ValueError):
        return None
    if man.get('settings') != settings:
        return None
    for s, files in man.get('files', {}).items():
        for key, p in files.items():
            full = osp.join(out_dir, p)
            if key == 'images':
                if not osp.isdir(full) or len(glob.glob(osp.join(full, '*.jpg'))) != splits[s]:
                    return None
            elif not osp.isfile(full):
                return None
    return man


def _check_args(splits, image_size, formats) -> Tuple[Dict[str, int], Tuple[int, int], Tuple[str, ...]]:
    if not isinstance(splits, Mapping) or not splits:
        raise ToyImagesError(f'splits must be a non-empty dict {{split: number of images}}, got {splits!r}')
    out = {}
    for s, n in splits.items():
        if not isinstance(s, str) or not s or not s.replace('_', '').replace('-', '').isalnum():
            raise ToyImagesError(f'split name {s!r}: use letters, digits, "-" and "_" only')
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ToyImagesError(f'split {s!r}: the number of images must be an integer >= 1, got {n!r}')
        out[s] = int(n)
    try:
        W, H = (int(x) for x in image_size)
    except (TypeError, ValueError):
        raise ToyImagesError(f'image_size must be (width, height), got {image_size!r}') from None
    if not (32 <= W <= 4096 and 32 <= H <= 4096):
        raise ToyImagesError(f'image_size {W}x{H}: width and height must be within 32..4096 pixels')
    formats = tuple(formats)
    bad = [f for f in formats if f not in TOY_IMAGE_FORMATS]
    if bad or not formats:
        raise ToyImagesError(f'formats {list(formats)}: choose one or more of {list(TOY_IMAGE_FORMATS)}')
    return out, (W, H), tuple(f for f in TOY_IMAGE_FORMATS if f in formats)


def _move_into_place(src: str, dst: str) -> None:
    """Replace ``dst`` (file or directory) by ``src``."""
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if osp.isdir(dst) and not osp.islink(dst):
        old = f'{dst}.old{os.getpid()}'
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def make_toy_images(out_dir: str, body_model_dir: Optional[str] = None,
                    splits: Optional[Mapping[str, int]] = None, image_size: Tuple[int, int] = (320, 240),
                    seed: int = 1, formats: Sequence[str] = TOY_IMAGE_FORMATS,
                    smpl_path: Optional[str] = None) -> dict:
    """Render a toy mesh-image set and write it in the mesh-image annotation formats.

    Args:
        out_dir: output directory (see the module docstring for the layout); other files in it are left
            alone.
        body_model_dir: the toy body models' directory (``toy_body_model_paths(root)['body_models']``:
            ``smpl/SMPL_NEUTRAL.pkl``, ``smpl/J_regressor_coco.npy``, ``J_regressor_h36m_correct.npy``).
        splits: {split name: number of images}, default ``{'train': 200, 'test': 100}``; each split poses
            its own held-out subjects.
        image_size: (W, H) pixels.
        seed: everything is a deterministic function of it (and of the body model).
        formats: any of ``'tsv'`` (METRO), ``'spin'``, ``'humandata'``, ``'coco'`` (COCO person keypoints,
            2D only: for training a 2D pose network with mmpose).
        smpl_path: a real SMPL model (file or directory, see :class:`~mmpose_mpt.body_models.SMPL`; the
            Human3.6M regressor next to it or in its parent) to render instead of the toy body.

    Returns:
        dict(out_dir, manifest, reused (bool: an existing complete set with the same settings was kept),
        splits={split: dict(images=dir, scenes=npz, spin=npz, humandata=npz, tsv=yaml)} (the formats
        asked for)). ``scenes/<split>.npz`` holds per image (N rows): ``img_name``, ``cam_f`` / ``cam_c``
        (N, 2) pixels, ``cam_R`` (N, 3, 3) world -> camera and ``cam_C`` (N, 3) (z-up world, metres),
        ``transl`` (N, 3) (``SMPL(smpl_pose, smpl_betas).vertices + transl`` = the rendered mesh, camera
        frame), ``floor_z``, ``person_dist``, ``scene_seed``, ``body_color`` (BGR), ``light_dir``, ``cut``
        (a labelled joint lies outside the image), ``source`` (motion file and frame); and ``image_size``.

    Raises:
        ToyImagesError: bad arguments; BodyModelFileError / BodyModelFileNotFoundError: bad / missing
        body model (or no Human3.6M regressor for it).
    """
    splits, size, formats = _check_args({'train': 200, 'test': 100} if splits is None else splits, image_size,
                                        formats)
    out_dir = os.fspath(out_dir)
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise ToyImagesError(f'{out_dir}: the output directory is an existing file')
    smpl = _body_model(body_model_dir, smpl_path)
    smpl.get_regressor('h36m')  # fail now (one line) when a real model has no Human3.6M regressor
    smpl.get_regressor('coco')
    settings = dict(version=TOY_IMAGES_VERSION, splits=splits, image_size=list(size), seed=int(seed),
                    formats=list(formats), body_model=_fingerprint(smpl), jpeg_quality=_JPEG_QUALITY)
    paths = _expected_files(out_dir, splits, formats)
    manifest_path = osp.join(out_dir, MANIFEST_NAME)
    if _complete(out_dir, settings, splits) is not None:
        return dict(out_dir=out_dir, manifest=manifest_path, reused=True, splits=paths)

    from .formats import write_humandata_npz, write_metro_tsv, write_spin_npz
    from .formats.coco_keypoints import write_coco_keypoints
    os.makedirs(out_dir, exist_ok=True)
    if osp.exists(manifest_path):  # invalidate first: an interrupted rewrite must not look complete
        os.remove(manifest_path)
    t0 = time.time()
    stage = tempfile.mkdtemp(prefix='.toy_images_tmp', dir=out_dir)
    try:
        # 10 sequences per split at 30 fps: 1200 frames for 4 s, longer clips for larger sets
        motion = _held_out_motion(list(splits), int(seed), stage, seconds=max(4.0, max(splits.values()) / 300))
        for split, num in splits.items():
            sdir = osp.join(stage, 'images', split)
            os.makedirs(sdir)
            records, jpegs, scenes = _generate_split(smpl, split, num, motion[split], size, int(seed), sdir,
                                                     f'images/{split}')
            staged = {'images': sdir, 'scenes': osp.join(stage, 'scenes', f'{split}.npz')}
            os.makedirs(osp.dirname(staged['scenes']), exist_ok=True)
            np.savez(staged['scenes'], **scenes)
            if 'spin' in formats:
                staged['spin'] = osp.join(stage, 'spin', f'{split}.npz')
                os.makedirs(osp.dirname(staged['spin']), exist_ok=True)
                write_spin_npz(staged['spin'], records)
            if 'humandata' in formats:
                staged['humandata'] = osp.join(stage, 'humandata', f'{split}.npz')
                os.makedirs(osp.dirname(staged['humandata']), exist_ok=True)
                write_humandata_npz(staged['humandata'], records, compressed=True,
                                    config=f'mmpose-mpt toy images ({split})')
            if 'coco' in formats:   # for training a 2D pose network with mmpose's CocoDataset
                staged['coco'] = write_coco_keypoints(
                    osp.join(stage, 'coco', f'person_keypoints_{split}.json'), records, size)
            if 'tsv' in formats:
                os.makedirs(osp.join(stage, 'tsv'), exist_ok=True)
                staged['tsv'] = write_metro_tsv(osp.join(stage, 'tsv'), split, records, jpegs)
            # move the split's files into place (the TSV as all of its files)
            for key, src in staged.items():
                if key == 'tsv':
                    for p in sorted(glob.glob(osp.join(stage, 'tsv', f'{split}.*'))):
                        _move_into_place(p, osp.join(out_dir, 'tsv', osp.basename(p)))
                else:
                    _move_into_place(src, paths[split][key])
        manifest = dict(settings=settings, seconds=round(time.time() - t0, 1),
                        files={s: {k: osp.relpath(p, out_dir) for k, p in d.items()} for s, d in paths.items()},
                        layout='image paths (img_name / imgname / image_path / TSV keys) are relative to '
                               'out_dir; scenes/<split>.npz: camera and placement per image')
        tmp = f'{manifest_path}.tmp{os.getpid()}'
        with open(tmp, 'w') as fh:
            json.dump(manifest, fh, indent=1)
        os.replace(tmp, manifest_path)  # last: marks the set complete
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return dict(out_dir=out_dir, manifest=manifest_path, reused=False, splits=paths)


def draw_contact_sheet(out_dir: str, split: str = 'train', num: int = 8, cols: int = 4) -> np.ndarray:
    """A grid of the first ``num`` images of a split with their 2D J24 labels (visible joints, bones of
    :data:`J24_SKELETON`) and the label box (``center`` +- 100 ``scale``) drawn, read back from the
    written files (SPIN npz, else HumanData, else the METRO TSV). Returns a BGR uint8 image."""
    from ..visualization.mesh_renderer import draw_keypoints
    from .formats import MetroTSV, read_humandata_npz, read_spin_npz
    paths = _expected_files(out_dir, {split: 1}, TOY_IMAGE_FORMATS)[split]
    if osp.isfile(paths['spin']):
        ann = read_spin_npz(paths['spin'])
    elif osp.isfile(paths['humandata']):
        ann = read_humandata_npz(paths['humandata'])
    elif osp.isfile(paths['tsv']):
        ann = MetroTSV(paths['tsv']).annotations
    else:
        raise ToyImagesError(f'{out_dir}: no toy image set for split {split!r} (run tools/make_toy_images.py)')
    names = np.load(paths['scenes'])['img_name']
    tiles = []
    for i in range(min(num, len(names))):
        img = cv2.imread(osp.join(out_dir, str(names[i])), cv2.IMREAD_COLOR)
        if img is None:
            raise ToyImagesError(f'{osp.join(out_dir, str(names[i]))}: missing or unreadable image')
        kp = ann.keypoints_2d[i]
        img = draw_keypoints(img, kp[:, :2], visible=kp[:, 2] > 0, skeleton=J24_SKELETON, radius=2)
        c, half = ann.center[i], 100.0 * float(ann.scale[i])
        cv2.rectangle(img, (int(round(c[0] - half)), int(round(c[1] - half))),
                      (int(round(c[0] + half)), int(round(c[1] + half))), (0, 255, 0), 1, cv2.LINE_AA)
        tiles.append(img)
    if not tiles:
        raise ToyImagesError(f'{out_dir}: split {split!r} has no images')
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    return np.concatenate([np.concatenate(tiles[r:r + cols], 1) for r in range(0, len(tiles), cols)], 0)
