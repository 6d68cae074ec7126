"""Toy hand data: generated hand poses of the toy MANO written in the real layouts, so that every hand path
(Complement pre-training, MANO-parameter pre-training, FreiHAND fine-tuning / test, pred.json) runs here.

* ``complement/<part>/model_mano/<num>.obj`` and ``complement_val/...``: camera-space meshes of the toy
  MANO in Complement's release layout and conventions (mirrored: x negated; the fixed camera
  ``COMPLEMENT_K``, 256 x 256; see :mod:`~mmpose_mpt.datasets.complement_dataset`). Train and held-out
  hands come from different seeds.
* ``mano_params_{train,val}.npz``: the same kind of poses as MANO parameters (``pose`` (N, 48),
  ``betas`` (N, 10)) for :class:`ManoParamDataset`.
* ``freihand/``: a small FreiHAND-format set: ``training_{K,mano,xyz,verts,scale}.json`` (N samples;
  ``mano`` = 48 pose + 10 shape + 2 uv_root + 1 scale as ``split_theta``), ``training/rgb/%08d.jpg``
  224 x 224 in the 4 versions (``id + N * v``: FreiHAND's stride is its sample count, 32560; the toy
  set's is N, pass ``version_stride=N``), and ``evaluation_{K,mano,xyz,verts,scale}.json`` +
  ``evaluation/rgb``. Images are rendered from the toy hand by the numpy painter through each sample's
  K over a random background; ``xyz`` = :meth:`MANO.joints21` of the posed model (skeleton + tips, how
  FreiHAND made its ``training_xyz.json``).

Hand poses: per finger joint a flexion about the toy hand's bending axis (z; each finger's curl drawn
once per hand, shared by its 3 joints with small differences) + small random abduction / twist, relative
to ``hands_mean`` (``flat_hand_mean=False``, FreiHAND's convention); wrist orientation uniformly random
for Complement / MANO-parameter views, near-frontal (within ~60 deg) for the FreiHAND images; betas
N(0, 0.5^2). Deterministic under ``seed``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np

from .complement_dataset import write_obj

FREIHAND_TOY_K = np.array([[560.0, 0.0, 112.0], [0.0, 560.0, 112.0], [0.0, 0.0, 1.0]])
VERSION_TINTS = ((0, 0, 0), (30, -10, 10), (-20, 25, 0), (10, 10, -30))   # 'gs', 'hom', 'sample', 'auto'


def _rotvec_to_matrix(r: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation
    return Rotation.from_rotvec(r).as_matrix()


def toy_hand_poses(n: int, seed: int, frontal: bool = False) -> Dict[str, np.ndarray]:
    """``pose`` (n, 48) float32 (wrist 3 + 15 x 3, relative to hands_mean) and ``betas`` (n, 10)."""
    from scipy.spatial.transform import Rotation
    rng = np.random.default_rng(seed)
    curl = rng.uniform(-0.1, 1.3, (n, 5, 1))                                    # per finger
    fingers = np.zeros((n, 5, 3, 3))
    fingers[..., 2] = curl * rng.uniform(0.7, 1.3, (n, 5, 3))                    # flexion (z)
    fingers[..., :2] = rng.normal(0, 0.12, (n, 5, 3, 2))                         # abduction / twist
    if frontal:
        glob = Rotation.from_rotvec(rng.normal(0, 0.5, (n, 3))).as_rotvec()
    else:
        glob = Rotation.random(n, random_state=int(rng.integers(1 << 31))).as_rotvec()
    pose = np.concatenate([glob, fingers.reshape(n, 45)], 1)
    return dict(pose=pose.astype(np.float32), betas=rng.normal(0, 0.5, (n, 10)).astype(np.float32))


def _pose_hands(mano, params: Dict[str, np.ndarray]):
    import torch
    with torch.no_grad():
        p = torch.from_numpy(params['pose']).double()
        out = mano(betas=torch.from_numpy(params['betas']).double(), global_orient=p[:, :3], hand_pose=p[:, 3:])
        return out['vertices'].numpy(), mano.joints21(out).numpy()


def _place(verts, joints, rng, depth, spread):
    """Move each hand so its middle MCP (joint 9) sits at depth ``depth`` (range) near the optical axis."""
    n = len(verts)
    t = np.stack([rng.uniform(-spread, spread, n), rng.uniform(-spread, spread, n),
                  rng.uniform(*depth, n)], 1) - joints[:, 9]
    return verts + t[:, None], joints + t[:, None]


def write_complement(out_dir: str, mano, n: int, seed: int, parts=('base_pose', 'trans_pose_batch1')) -> int:
    """n toy meshes in Complement's layout (mirrored, camera space of COMPLEMENT_K)."""
    rng = np.random.default_rng(seed + 1000)
    verts, joints = _pose_hands(mano, toy_hand_poses(n, seed))
    verts, _ = _place(verts, joints, rng, (0.45, 0.6), 0.02)
    faces = mano.body.faces.astype(np.int64) if hasattr(mano.body, 'faces') else None
    for i in range(n):
        v = verts[i].copy()
        v[:, 0] *= -1                      # the release stores mirrored meshes
        write_obj(osp.join(out_dir, parts[i % len(parts)], 'model_mano', f'{i}.obj'), v, faces)
    return n


def _dump(path: str, value) -> None:
    with open(path, 'w') as fh:
        json.dump(value, fh)


def write_freihand(out_dir: str, mano, num_train: int, num_eval: int, seed: int) -> Dict[str, int]:
    """A FreiHAND-format set rendered from the toy hand (see the module docstring)."""
    from ..visualization.mesh_renderer import render_mesh
    import cv2
    faces = np.asarray(mano.body.faces, np.int64)
    K = FREIHAND_TOY_K
    for split, n, s in (('training', num_train, seed), ('evaluation', num_eval, seed + 1)):
        rng = np.random.default_rng(s + 2000)
        params = toy_hand_poses(n, s + 7, frontal=True)
        verts, joints = _pose_hands(mano, params)
        verts, joints = _place(verts, joints, rng, (0.55, 0.7), 0.015)
        uv = (joints[:, 9] @ K.T)
        uv_root = uv[:, :2] / uv[:, 2:]
        scale = 0.5 * (K[0, 0] + K[1, 1]) / joints[:, 9, 2]          # model.py: depth = focal / scale
        mano_rows = np.concatenate([params['pose'], params['betas'], uv_root, scale[:, None]], 1)
        _dump(osp.join(out_dir, f'{split}_K.json'), [K.tolist()] * n)
        _dump(osp.join(out_dir, f'{split}_mano.json'), [[r.tolist()] for r in mano_rows])
        _dump(osp.join(out_dir, f'{split}_xyz.json'), joints.round(6).tolist())
        _dump(osp.join(out_dir, f'{split}_verts.json'), verts.round(6).tolist())
        _dump(osp.join(out_dir, f'{split}_scale.json'),
              np.linalg.norm(joints[:, 9] - joints[:, 10], axis=1).tolist())
        rgb = osp.join(out_dir, split, 'rgb')
        os.makedirs(rgb, exist_ok=True)
        versions = range(4) if split == 'training' else range(1)
        for i in range(n):
            base = rng.uniform(40, 200, 3)
            yy, xx = np.mgrid[0:224, 0:224] / 224.0
            bg = base[None, None] + 40 * np.stack([xx, yy, xx * yy], -1)
            colour = tuple(int(c) for c in rng.uniform(120, 230, 3))
            for v in versions:
                img = np.clip(bg + np.array(VERSION_TINTS[v]), 0, 255).astype(np.uint8)
                img = render_mesh(verts[i], faces, image=img, intrinsics=((K[0, 0], K[1, 1]), (K[0, 2], K[1, 2])),
                                  color=colour)
                cv2.imwrite(osp.join(rgb, f'{i + n * v:08d}.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return dict(training=num_train, evaluation=num_eval)


def make_toy_hands(out_dir: str = 'data/toy/hands', body_model_dir: str = 'data/toy/body_models',
                   num_complement: int = 1200, num_complement_val: int = 200, num_freihand: int = 48,
                   num_freihand_eval: int = 32, seed: int = 0,
                   sampling_out: Optional[str] = None) -> Dict[str, str]:
    """Write all toy hand data (see the module docstring); returns the paths.

    Also writes ``sampling_out`` (default ``<body_model_dir>/mano_downsampling_metro.npz``): the toy
    MANO's 778 -> 195 sampling with METRO's vertex selection (:func:`build_selection_sampling`).
    """
    from ..body_models import MANO, load_body_model_file, save_mesh_sampling
    from ..body_models.mano import build_selection_sampling
    mano_dir = osp.join(body_model_dir, 'mano')
    import torch
    mano = MANO(mano_dir, dtype=torch.float64)
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(complement=osp.join(out_dir, 'complement'), complement_val=osp.join(out_dir, 'complement_val'),
                 mano_params_train=osp.join(out_dir, 'mano_params_train.npz'),
                 mano_params_val=osp.join(out_dir, 'mano_params_val.npz'), freihand=osp.join(out_dir, 'freihand'),
                 mano_sampling=sampling_out or osp.join(body_model_dir, 'mano_downsampling_metro.npz'))
    write_complement(paths['complement'], mano, num_complement, seed)
    write_complement(paths['complement_val'], mano, num_complement_val, seed + 1, parts=('base_pose', ))
    for key, n, s in (('mano_params_train', num_complement, seed), ('mano_params_val', num_complement_val, seed + 1)):
        np.savez(paths[key], **toy_hand_poses(n, s + 500))
    os.makedirs(paths['freihand'], exist_ok=True)
    write_freihand(paths['freihand'], mano, num_freihand, num_freihand_eval, seed)
    arrays = load_body_model_file(mano.model_file)
    save_mesh_sampling(paths['mano_sampling'], build_selection_sampling(arrays['v_template'], arrays['f']))
    return paths
