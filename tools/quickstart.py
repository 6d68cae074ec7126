"""The embedded default, end to end, on generated data only (README's first command).

    python tools/quickstart.py [--work-dir work_dirs/quickstart] [--data-root data/toy] [--skip-train]

1. writes the licence-free toy body models (SMPL- and MANO-format stand-ins) to ``DATA_ROOT/body_models``;
2. poses the toy body and draws it with its COCO-17 joints (``toy_body.png``);
3. generates toy AMASS-format motion and prepares the MoCap index exactly as for real AMASS;
4. pre-trains ``configs/mpt/pretrain_toy.py`` on it, evaluating on held-out toy motion before and after
   (``metrics.json``);
5. renders predicted vs ground-truth meshes of held-out samples (``pred_vs_gt.png``).

Everything is idempotent: generated data is reused when it is already there.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def log(msg: str) -> None:
    print(f'[quickstart] {msg}', flush=True)


def example_poses() -> np.ndarray:
    """(3, 72) axis-angle SMPL poses: rest, a step with raised arm, a squat."""
    poses = np.zeros((3, 72), np.float32)
    # pose 1: right arm raised, left knee bent forward, slight elbow flexion
    poses[1, 17 * 3 + 2] = -1.0    # r_shoulder about z: the right arm (along -x) goes up
    poses[1, 16 * 3 + 2] = -0.3    # l_shoulder down a little
    poses[1, 19 * 3 + 1] = 0.8     # r_elbow
    poses[1, 1 * 3 + 0] = -0.6     # l_hip flexion
    poses[1, 4 * 3 + 0] = 0.9      # l_knee
    # pose 2: squat, arms forward
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
        poses[2, hip * 3 + 0] = -1.3
        poses[2, knee * 3 + 0] = 2.0
        poses[2, ankle * 3 + 0] = -0.5
    poses[2, 16 * 3 + 1] = -1.2
    poses[2, 17 * 3 + 1] = 1.2
    return poses


def draw_toy_body(paths: dict, out_file: str) -> None:
    from mmpose_mpt.body_models import SMPL
    from mmpose_mpt.visualization import draw_keypoints, look_at_camera, project_orthographic, render_mesh

    smpl = SMPL(paths['smpl_dir'], gender='neutral')
    poses = torch.from_numpy(example_poses())
    betas = torch.zeros(len(poses), smpl.num_betas)
    betas[1, 0] = 1.5   # a taller/bigger variant for the second pose
    with torch.no_grad():
        out = smpl(betas=betas, body_pose=poses[:, 3:], global_orient=poses[:, :3])
        coco = smpl.regress(out['vertices'], 'coco')
    tiles = []
    for i in range(len(poses)):
        v = out['vertices'][i].numpy()
        for view in ('front', 'side'):
            rot, so = look_at_camera(v, (320, 400), view=view)
            img = render_mesh(v, smpl.faces, size=(320, 400), rotation=rot, scale_offset=so)
            img = draw_keypoints(img, project_orthographic(coco[i].numpy(), rot, so))
            tiles.append(img)
    grid = np.concatenate(tiles, axis=1)
    cv2.putText(grid, 'toy SMPL-format body (a stand-in for SMPL) with its COCO-17 joints', (10, 24),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(out_file, grid)


def prepare_toy_mocap(data_root: str) -> str:
    """Toy AMASS-format motion -> the prepared MoCap index, exactly as for real AMASS. Returns its dir."""
    from mmpose_mpt.datasets.amass_index import prepare_amass
    from mmpose_mpt.datasets.toy_mocap import make_toy_mocap
    amass_dir, out_dir = osp.join(data_root, 'amass'), osp.join(data_root, 'mocap')
    if not osp.isdir(amass_dir):
        make_toy_mocap(amass_dir, num_sequences=30, seconds=6.0, seed=0)
    # Neutral body model for the joints, matching the neutral model of the data preprocessor.
    prepare_amass(amass_dir, out_dir, osp.join(data_root, 'body_models'), stride_seconds=0.1,
                  neutral_only=True, progress=False, verbose=False)
    log(f'toy MoCap index in {out_dir}')
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument('--data-root', default='data/toy')
    parser.add_argument('--config', default=osp.join(REPO, 'configs/mpt/pretrain_toy.py'))
    parser.add_argument('--skip-train', action='store_true', help='stop after the data steps')
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    t0 = time.time()

    from mmpose_mpt.body_models import make_toy_body_models
    paths = make_toy_body_models(args.data_root)
    log(f'toy body models in {args.data_root}/body_models ({time.time() - t0:.1f}s)')

    draw_toy_body(paths, osp.join(args.work_dir, 'toy_body.png'))
    log(f'wrote {args.work_dir}/toy_body.png')

    prepare_toy_mocap(args.data_root)
    if args.skip_train:
        return
    pretrain_and_evaluate(args.config, args.data_root, args.work_dir)
    log(f'done in {time.time() - t0:.0f}s; outputs in {args.work_dir}/')


if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    main()
