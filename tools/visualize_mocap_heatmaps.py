"""Look at what the MoCap data engine feeds the network: mesh, virtual camera, crop and heatmaps.

    python tools/visualize_mocap_heatmaps.py --data-root data/toy --out mocap_heatmaps.png
                                             [--num 4] [--split train] [--heatmap-size 224]
                                             [--noise-std 0.1] [--seed 0]

One row per sample (items spread over the split, cycling through the virtual views), four panels:

1. the whole virtual-camera image: the posed mesh rendered with the camera's intrinsics (camera-frame
   vertices = R @ X + t of the SMPL forward), the tight box of the projected joints (green) and the
   top-down crop (yellow: centre ± scale / 2);
2. the crop: the same mesh, projected through the crop intrinsics (f, c composed with ``warp_mat``),
   its LEFT half (rest template x > 0, SMPL's left) tinted blue and its right half red; the COCO-17
   keypoints of the heatmaps (person's LEFT joints blue, RIGHT joints red, "L"/"R" at
   the shoulders and hips) and the 2D joint targets (LSP-14, ``targets['joints_2d']`` mapped back
   from normalised to crop pixels, small white crosses);
3. the 17 heatmaps summed, rendered by ``MoCapHeatmapPreprocessor`` from the clean keypoints (before
   MHM), over the mesh crop;
4. the same after Masked Heatmap Modeling (masking, jitter, Gaussian noise with std drawn in
   [0, --noise-std]; ``training=True``), masked joints listed.

Each row's caption carries numeric checks: upright (nose above the ankles in the crop), whether the
person faces the camera, whether the person's left shoulder/hip lies on the image side implied by
that (right of the right one when facing the camera, left of it when seen from behind), and the
largest distance between a clean heatmap's argmax and its keypoint. Toy data is generated into
``--data-root`` when it is missing.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

COCO_LEFT = (1, 3, 5, 7, 9, 11, 13, 15)
COCO_RIGHT = (2, 4, 6, 8, 10, 12, 14, 16)
BLUE, RED, WHITE, GREEN, YELLOW = (255, 80, 0), (0, 0, 230), (255, 255, 255), (0, 170, 0), (0, 220, 255)


def heat_overlay(base: np.ndarray, heat: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """A [0, 1] map (H, W) as a JET overlay on a BGR image, weighted by the map itself."""
    heat = np.clip(heat, 0.0, 1.0)
    color = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET).astype(np.float32)
    w = (alpha * np.sqrt(heat))[..., None]
    return (base.astype(np.float32) * (1 - w) + color * w).clip(0, 255).astype(np.uint8)


def put(img: np.ndarray, text: str, org, color=(0, 0, 0), scale: float = 0.4) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def draw_coco(img: np.ndarray, kp: np.ndarray, vis: np.ndarray) -> np.ndarray:
    from mmpose_mpt.visualization import draw_keypoints
    out = draw_keypoints(img, kp, vis, color=(0, 200, 0), radius=2)
    for ids, col, tag in ((COCO_LEFT, BLUE, 'L'), (COCO_RIGHT, RED, 'R')):
        for k in ids:
            if vis[k]:
                cv2.circle(out, tuple(int(round(v)) for v in kp[k]), 3, col, -1, cv2.LINE_AA)
        for k in ids[2:3] + ids[5:6]:                       # shoulder, hip
            if vis[k]:
                put(out, tag, (int(kp[k, 0]) + 4, int(kp[k, 1]) - 3), col)
    return out


def facing_checks(kp3d_canon: np.ndarray, R: np.ndarray, kp_crop: np.ndarray) -> dict:
    """Geometric left/right and uprightness checks of one sample.

    ``forward`` = (left_hip - right_hip) x (neck - pelvis) in the z-up canonical frame is where the
    person faces (SMPL: left = +x, up = +y, forward = +z = left x up); it also agrees with the nose
    lying in front of the ears when the COCO labels are not swapped. Seen from the front (forward
    pointing at the camera, camera-frame z < 0), the person's left appears on the image right.
    """
    lhip, rhip, lsh, rsh = kp3d_canon[11], kp3d_canon[12], kp3d_canon[5], kp3d_canon[6]
    pelvis, neck = 0.5 * (lhip + rhip), 0.5 * (lsh + rsh)
    fwd = np.cross(lhip - rhip, neck - pelvis)
    nose_ahead = float(np.dot(kp3d_canon[0] - 0.5 * (kp3d_canon[3] + kp3d_canon[4]), fwd)) > 0
    facing = float((R @ fwd)[2]) < 0
    sign = 1 if facing else -1
    lr_ok = bool(sign * (kp_crop[5, 0] - kp_crop[6, 0]) > 0 and sign * (kp_crop[11, 0] - kp_crop[12, 0]) > 0)
    upright = bool(kp_crop[0, 1] < min(kp_crop[15, 1], kp_crop[16, 1]))
    return dict(facing=facing, lr_ok=lr_ok, upright=upright, labels_ok=nose_ahead)


def render_sided(v_cam: np.ndarray, faces: np.ndarray, left: np.ndarray, f, c, size) -> np.ndarray:
    """Painter's-algorithm render of camera-frame vertices through pinhole intrinsics (``f``, ``c``),
    the person's left half tinted blue and the right half red (``left``: (V,) bool per vertex, from
    the rest template: SMPL's left is +x), so the picture itself shows which side is which."""
    w, h = size
    canvas = np.full((h, w, 3), 255, np.uint8)
    z = np.maximum(v_cam[:, 2], 1e-6)
    pix = np.stack([f[0] * v_cam[:, 0] / z + c[0], f[1] * v_cam[:, 1] / z + c[1]], 1)
    tri = v_cam[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    shade = 0.35 + 0.65 * np.abs(n @ (np.array([0.3, -0.4, -1.0]) / np.linalg.norm([0.3, -0.4, -1.0])))
    base = np.where((left[faces].sum(1) >= 2)[:, None], np.array([235.0, 175, 140]),
                    np.array([140.0, 160, 235]))                       # BGR: left bluish, right reddish
    pts = np.round(pix[faces] * 16).astype(np.int32)
    for i in np.argsort(-z[faces].mean(1)):
        if z[faces[i]].min() > 1e-6:
            col = tuple(int(v) for v in np.clip(base[i] * shade[i], 0, 255))
            cv2.fillConvexPoly(canvas, pts[i], col, lineType=cv2.LINE_AA, shift=4)
    return canvas


def crop_intrinsics(f: np.ndarray, c: np.ndarray, warp: np.ndarray):
    """Pinhole intrinsics of the crop: pixels ``warp @ [f X/Z + c, 1]`` (a scale + shift, no rotation)."""
    if abs(warp[0, 1]) > 1e-4 * abs(warp[0, 0]) or abs(warp[1, 0]) > 1e-4 * abs(warp[1, 1]):
        raise ValueError(f'warp_mat has a rotation/shear: {warp}')
    s = np.array([warp[0, 0], warp[1, 1]])
    return (s * f, s * c + warp[:, 2])


def visualize(data_root: str, out_file: str, num: int = 4, split: str = 'train',
              heatmap_size: int = 224, noise_std: float = 0.1, seed: int = 0) -> dict:
    sys.path.insert(0, osp.join(REPO, 'tools'))
    from benchmark_data import build_dataset, build_preprocessor, data_paths, data_ready, prepare_toy_data
    from mmengine.dataset import pseudo_collate

    from mmpose_mpt.visualization import render_mesh
    if not data_ready(data_root):
        print(f'preparing toy data in {data_root} ...', flush=True)
        prepare_toy_data(data_root)
    paths = data_paths(data_root)
    size = (heatmap_size, heatmap_size)
    cam = dict(type='RandomVirtualCamera', num_views=4, input_size=size, random_view=False)
    clean_ds = build_dataset(paths['mocap'], [cam, dict(type='MaskedHeatmapModeling', enabled=False),
                                              dict(type='PackMeshInputs')], split)
    mhm_ds = build_dataset(paths['mocap'], [cam, dict(type='MaskedHeatmapModeling', enabled=True,
                                                      noise_std=noise_std, seed=seed),
                                            dict(type='PackMeshInputs')], split)
    pp = build_preprocessor(paths, size)
    n_items = len(clean_ds)
    slots = np.linspace(0, n_items // 4 - 1, num).round().astype(int)
    idx = [int(s) * 4 + i % 4 for i, s in enumerate(slots)]   # spread over the split, cycle the views
    raw = [clean_ds.get_data_info(i) for i in idx]
    clean = pseudo_collate([clean_ds[i] for i in idx])
    mhm = pseudo_collate([mhm_ds[i] for i in idx])
    torch.manual_seed(seed)
    out_clean = pp(clean, training=False)
    out_mhm = pp(mhm, training=True)
    faces = pp.body_models[0].faces
    left = pp.body_models[0].v_template[:, 0].numpy() > 0     # the person's left half (SMPL: +x)
    gts = [ds.gt_instances for ds in clean['data_samples']]
    pose = torch.from_numpy(np.concatenate([g.smpl_pose for g in gts]))
    betas = torch.from_numpy(np.concatenate([g.smpl_betas for g in gts]))
    with torch.no_grad():
        verts_world = pp.posed_vertices(pose, betas, torch.zeros(len(idx))).numpy()

    rows: List[np.ndarray] = []
    checks = []
    W = H = heatmap_size
    for i, g in enumerate(gts):
        R, t, f, c = g.cam_R[0], g.cam_t[0], g.cam_f[0], g.cam_c[0]
        warp = g.warp_mat[0].astype(np.float64)
        v_cam = verts_world[i] @ R.T + t
        # 1. whole virtual image (H36M 1000 x 1002), scaled to the row height
        img_w, img_h = 1000, 1002
        k = H / img_h
        full = render_mesh(v_cam, faces, size=(int(round(img_w * k)), H),
                           intrinsics=(f * k, c * k))
        x0, y0, x1, y1 = (g.bboxes[0] * k).round().astype(int)
        cv2.rectangle(full, (x0, y0), (x1, y1), GREEN, 1)
        cen, sc = g.bbox_centers[0] * k, g.bbox_scales[0] * k
        p0, p1 = (cen - sc / 2).round().astype(int), (cen + sc / 2).round().astype(int)
        cv2.rectangle(full, tuple(p0), tuple(p1), YELLOW, 1)
        put(full, f"view {clean['data_samples'][i].metainfo['view_index']}", (4, 12))
        # 2. crop: mesh + keypoints + 2D targets
        fc, cc = crop_intrinsics(f, c, warp)
        crop = render_sided(v_cam, faces, left, fc, cc, (W, H))
        kp = g.keypoints[0]
        vis = g.keypoints_visible[0] > 0
        panel2 = draw_coco(crop, kp, vis)
        j2d = (out_clean['targets']['joints_2d'][i].numpy() + 1) / 2 * np.array([W, H])
        for x, y in j2d:
            cv2.drawMarker(panel2, (int(round(x)), int(round(y))), WHITE, cv2.MARKER_CROSS, 5, 1)
        # 3./4. heatmaps before / after MHM
        hm_clean = out_clean['inputs'][i].numpy()
        hm_mhm = out_mhm['inputs'][i].numpy()
        amax = np.stack(np.unravel_index(hm_clean.reshape(17, -1).argmax(1), (H, W)), 1)[:, ::-1]
        err = float(np.abs(amax - kp)[vis].max())
        panel3 = heat_overlay(crop, hm_clean.sum(0))
        panel4 = heat_overlay(crop, hm_mhm.sum(0))
        masked = [j for j in range(len(kp)) if vis[j] and float(mhm['inputs'][i][j, 2]) == 0]
        put(panel3, 'before MHM (clean)', (4, 12))
        put(panel4, f'after MHM: noise std {float(g_noise(mhm, i)):.3f}', (4, 12))
        put(panel4, f'masked: {masked}', (4, H - 6))
        chk = facing_checks(np.asarray(raw[i]['keypoints_3d'], np.float64), R.astype(np.float64), kp)
        chk.update(sample_idx=idx[i], max_argmax_err_px=round(err, 2), masked=masked)
        checks.append(chk)
        row = np.concatenate([full, panel2, panel3, panel4], axis=1)
        cap = np.full((34, row.shape[1], 3), 255, np.uint8)
        meta = clean['data_samples'][i].metainfo
        put(cap, f"#{idx[i]} {meta.get('seq_name', '')} frame {meta.get('frame_index', '')}", (4, 13),
            scale=0.42)
        put(cap, f"upright {chk['upright']} | faces camera {chk['facing']} | L/R side ok {chk['lr_ok']} | "
                 f"labels ok {chk['labels_ok']} | argmax err {err:.2f}px", (4, 28), scale=0.42)
        rows.append(np.concatenate([cap, row], axis=0))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    grid = np.concatenate(rows, axis=0)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    if not cv2.imwrite(out_file, grid):
        raise OSError(f'could not write {out_file}')
    return dict(out=out_file, checks=checks)


def g_noise(batch: dict, i: int) -> float:
    return float(np.asarray(batch['data_samples'][i].gt_instances.heatmap_noise_std).reshape(-1)[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', required=True, help='toy/prepared data root (generated when missing)')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--num', type=int, default=4, help='samples (rows)')
    p.add_argument('--split', default='train')
    p.add_argument('--heatmap-size', type=int, default=224)
    p.add_argument('--noise-std', type=float, default=0.1, help='MHM max heatmap noise std')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    res = visualize(args.data_root, args.out, args.num, args.split, args.heatmap_size, args.noise_std,
                    args.seed)
    for c in res['checks']:
        print(c)
    print(f"wrote {res['out']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
