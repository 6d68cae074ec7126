"""The embedded default, end to end, on generated data only (README's first command).

    python tools/quickstart.py [--work-dir work_dirs/quickstart] [--data-root data/toy] [--skip-train]

1. writes the licence-free toy body models (SMPL- and MANO-format stand-ins) to ``DATA_ROOT/body_models``;
2. poses the toy body and draws it with its COCO-17 joints (``toy_body.png``);
3. generates toy AMASS-format motion and prepares the MoCap index exactly as for real AMASS;
4. pre-trains ``configs/mpt/pretrain_toy.py`` on it, evaluating on held-out toy motion before and after
   (``metrics.json``);
5. renders predicted vs ground-truth meshes of held-out samples (``pred_vs_gt.png``);
6. renders toy images of held-out motion (``tools/make_toy_images.py``) and tests the pre-trained head
   on them without fine-tuning (``configs/mpt/test_wo_finetune_toy.py``): behind the toy pose network
   (random weights) and behind oracle pose maps (heatmaps of the ground-truth 2D joints), meshes drawn
   over the images (``images_wo_finetune.png``; figures in ``metrics.json``);
7. fine-tunes pose network + head end to end on the toy images' train split
   (``configs/mpt/finetune_toy.py``) and evaluates the held-out images again: before / after with
   side views in ``images_finetune.png``.

Everything is idempotent: generated data is reused when it is already there.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence

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
    prepare_amass(amass_dir, out_dir, osp.join(data_root, 'body_models'), stride_seconds=0.2,
                  neutral_only=True, progress=False, verbose=False)
    log(f'toy MoCap index in {out_dir}')
    return out_dir


def toy_overrides(data_root: str) -> dict:
    """``--cfg-options`` that point configs/mpt/pretrain_toy.py at another toy data root."""
    bm = osp.join(data_root, 'body_models')
    h36m = osp.join(bm, 'J_regressor_h36m_correct.npy')
    mocap = osp.join(data_root, 'mocap')
    return {
        'model.data_preprocessor.body_model.model_path': osp.join(bm, 'smpl'),
        'model.data_preprocessor.body_model.h36m_regressor': h36m,
        'model.data_preprocessor.mesh_sampler': osp.join(bm, 'mesh_downsampling.npz'),
        'model.head.upsampling_init': osp.join(bm, 'mesh_downsampling.npz'),
        'model.joint_regressor': h36m,
        'train_dataloader.dataset.data_root': mocap,
        'val_dataloader.dataset.data_root': mocap,
        'test_dataloader.dataset.data_root': mocap,
    }


def dropout_pipeline(cfg, mask_prob: float) -> list:
    """The validation pipeline with a fraction of the joints' heatmaps removed (robustness check)."""
    pipeline = [dict(t) for t in cfg.val_dataloader.dataset.pipeline]
    for t in pipeline:
        if t['type'] == 'MaskedHeatmapModeling':
            t.update(enabled=True, mask_prob=mask_prob, jitter_std=0.0, noise_std=0.0, seed=0)
    return pipeline


def evaluate(runner, pipeline=None) -> dict:
    """Metrics of the current model on the validation set (optionally through another pipeline).

    A plain loop instead of ``runner.val()``: the validation hooks (best-checkpoint saving) must not run
    outside training.
    """
    loader_cfg = runner.cfg.val_dataloader.copy()
    if pipeline is not None:
        loader_cfg['dataset'] = dict(loader_cfg['dataset'], pipeline=pipeline)
    loader = runner.build_dataloader(loader_cfg)
    evaluator = runner.build_evaluator(runner.cfg.val_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    runner.model.eval()
    with torch.no_grad():
        for batch in loader:
            evaluator.process(data_samples=runner.model.val_step(batch), data_batch=batch)
    return {k: round(float(v), 2) for k, v in evaluator.evaluate(len(loader.dataset)).items()}


def pick_render_samples(dataset, num: int) -> list:
    """Validation items to render: one sequence per kind of motion first (the kind is the file name
    without its take number: ``squat_05_poses`` -> ``squat``), then further sequences, ``num`` in all; of
    each sequence its most articulated mesh (largest body-pose rotation: the deepest squat, the highest
    arm); the virtual camera cycles from row to row."""
    views = max(1, int(getattr(dataset, 'num_views', 1)))
    infos = dataset.get_data_infos(range(0, len(dataset), views))          # one per mesh, view 0
    best = {}                                                               # seq -> (bend, mesh slot)
    for slot, info in enumerate(infos):
        bend = float(np.square(np.asarray(info['smpl_pose'])[3:]).sum())
        if bend > best.get(info['seq_name'], (-1.0, 0))[0]:
            best[info['seq_name']] = (bend, slot)
    kinds = {}
    for seq in best:   # insertion order = index order
        kind = osp.basename(seq).replace('_poses', '').rstrip('0123456789').rstrip('_')
        kinds.setdefault(kind, []).append(seq)
    order = [seqs[0] for seqs in kinds.values()] + [s for seqs in kinds.values() for s in seqs[1:]]
    return [best[seq][1] * views + k % views for k, seq in enumerate(order[:num])]


def render_predictions(runner, out_file: str, num: int = 5) -> None:
    """Predicted vs ground-truth meshes of ``num`` held-out samples (:func:`pick_render_samples`: other
    sequences, motions and bodies), each in the virtual camera's view and seen from its side."""
    from mmpose_mpt.visualization import render_mesh
    model = runner.model
    model.eval()
    loader = runner.val_dataloader
    picks = pick_render_samples(loader.dataset, num)
    batch = loader.collate_fn([loader.dataset[i] for i in picks])
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        samples = model(**data, mode='predict')
    faces = model.data_preprocessor.body_models[0].faces
    side = np.array([[0., 0., -1.], [0., 1., 0.], [1., 0., 0.]])   # camera frame seen from its right
    rows = []
    for ds in samples:
        gt, p = ds.gt_instances.vertices[0], ds.pred_instances
        pred = p.vertices[0] - p.vertex_root[0] if 'vertex_root' in p else p.vertices[0]
        tiles = []
        for rot in (np.eye(3), side):
            # orthographic, camera frame (x right, y down), framed on the ground truth
            g = gt @ rot.T
            lo, hi = g[:, :2].min(0), g[:, :2].max(0)
            s = 0.8 * 240 / (hi - lo).max()
            so = np.array([s, 120 - s * (lo[0] + hi[0]) / 2, 120 - s * (lo[1] + hi[1]) / 2])
            tiles += [render_mesh(v, faces, size=(240, 240), rotation=rot, scale_offset=so, color=col)
                      for v, col in ((pred, (120, 180, 240)), (gt, (150, 200, 150)))]
        row = np.concatenate(tiles, axis=1)
        label = str(ds.metainfo.get('seq_name', '')).split('/')[-1].replace('_poses', '')
        cv2.putText(row, f'{label}  view {ds.metainfo.get("view_index", "?")}', (6, 234),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
        rows.append(row)
    grid = np.concatenate(rows, axis=0)
    header = np.full((26, grid.shape[1], 3), 255, np.uint8)
    for k, text in enumerate(('prediction', 'ground truth', 'prediction (side)', 'ground truth (side)')):
        cv2.putText(header, text, (8 + 240 * k, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(out_file, np.concatenate([header, grid], axis=0))


def pretrain_and_evaluate(config: str, data_root: str, work_dir: str,
                          cfg_options: Optional[dict] = None) -> dict:
    """Pre-train the toy config; evaluate on held-out toy motion before/after; render meshes."""
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmpose_mpt.utils import adapt_cfg_to_device
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(toy_overrides(data_root))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = osp.join(work_dir, 'pretrain_toy')
    cfg = adapt_cfg_to_device(cfg)
    runner = Runner.from_cfg(cfg)
    drop30 = dropout_pipeline(cfg, 0.3)
    results = {'before': evaluate(runner), 'before_30pct_joint_dropout': evaluate(runner, drop30)}
    log(f'held-out before training: {results["before"]}')
    t0 = time.time()
    runner.train()
    results['train_seconds'] = round(time.time() - t0, 1)
    results['after'] = evaluate(runner)
    results['after_30pct_joint_dropout'] = evaluate(runner, drop30)
    log(f'held-out after training: {results["after"]}')
    log(f'held-out after training, 30% of the joints dropped: {results["after_30pct_joint_dropout"]}')
    with open(osp.join(work_dir, 'metrics.json'), 'w') as f:
        json.dump(results, f, indent=2)
    render_predictions(runner, osp.join(work_dir, 'pred_vs_gt.png'))
    log(f'wrote {work_dir}/metrics.json and {work_dir}/pred_vs_gt.png')
    return runner, results


def image_overrides(data_root: str) -> dict:
    """``--cfg-options`` that point configs/mpt/test_wo_finetune_toy.py at another toy data root."""
    out = {k: v for k, v in toy_overrides(data_root).items() if not k.endswith('dataset.data_root')}
    out['test_dataloader.dataset.ann_file'] = osp.join(data_root, 'images', 'tsv', 'test.yaml')
    return out


def fit_weak_perspective(joints_3d: np.ndarray, joints_2d: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(s, tx, ty) with s * (X[:, :2] + t) closest to the 2D joints (least squares over the visible
    ones): the camera that draws a ground-truth mesh (which has none) in the crop."""
    X, x = joints_3d[visible, :2], joints_2d[visible]
    n = len(X)
    # unknowns (s, s tx, s ty): x = s X + (s t)
    A = np.zeros((2 * n, 3))
    A[0::2, 0], A[1::2, 0] = X[:, 0], X[:, 1]
    A[0::2, 1] = A[1::2, 2] = 1
    sol = np.linalg.lstsq(A, x.reshape(-1), rcond=None)[0]
    return np.array([sol[0], sol[1] / sol[0], sol[2] / sol[0]])


def overlay(crop: np.ndarray, vertices: np.ndarray, faces: np.ndarray, camera: np.ndarray,
            color) -> np.ndarray:
    """The mesh drawn over the (224, 224) crop through the weak-perspective camera (s, tx, ty)."""
    from mmpose_mpt.visualization import render_mesh
    s, tx, ty = camera
    half = crop.shape[1] / 2
    # x_norm = s (x + tx), pixel = (x_norm + 1) * W / 2; depth = z (camera frame)
    so = np.array([s * half, half * (1 + s * tx), half * (1 + s * ty)])
    return render_mesh(vertices, faces, image=crop, rotation=np.eye(3), scale_offset=so, color=color)


def write_grid(rows: list, titles: Sequence[str], out_file: str, tile: int = 224) -> None:
    """Rows of equal-width tiles under a header of column titles, as one PNG."""
    grid = np.concatenate(rows, axis=0)
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for k, text in enumerate(titles):
        cv2.putText(header, text, (8 + tile * k, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.imwrite(out_file, np.concatenate([header, grid], axis=0))
    log(f'wrote {out_file}')


def test_without_finetuning(pretrain_runner, data_root: str, work_dir: str, checkpoint: str,
                            num_render: int = 4, splits: Optional[dict] = None,
                            cfg_options: Optional[dict] = None) -> dict:
    """Sec. 3.2 on rendered toy images: the pre-trained head behind (a) the toy config's pose network
    (random weights: no COCO-trained network exists here) and (b) oracle pose maps — heatmaps of the
    ground-truth 2D joints, what a perfect 2D pose network would give — then meshes over the images."""
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmpose_mpt.body_models.j24 import COCO17_TO_J24, J24_TO_J14
    from mmpose_mpt.datasets import make_toy_images
    from mmpose_mpt.models.data_preprocessors import render_heatmaps
    from mmpose_mpt.utils import adapt_cfg_to_device
    t0 = time.time()
    made = make_toy_images(osp.join(data_root, 'images'), osp.join(data_root, 'body_models'),
                           splits=splits or {'train': 200, 'test': 100})
    log(f'toy images in {made["out_dir"]} ({time.time() - t0:.0f}s)')

    cfg = Config.fromfile(osp.join(REPO, 'configs/mpt/test_wo_finetune_toy.py'))
    cfg.merge_from_dict(image_overrides(data_root))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(work_dir, 'test_wo_finetune_toy')
    cfg = adapt_cfg_to_device(cfg)
    runner = Runner.from_cfg(cfg)
    results = {'random_pose_net': {k: round(float(v), 2) for k, v in runner.test().items()}}
    log(f'toy images, testing without fine-tuning, random pose net: {results["random_pose_net"]}')

    # oracle pose maps through the pre-trained head itself (the pre-training model has no pose net)
    model, head_model = runner.model.eval(), pretrain_runner.model.eval()
    size = tuple(head_model.head.input_size)
    sigma = float(pretrain_runner.cfg.model.data_preprocessor.get('sigma', 3.0))
    evaluator = runner.build_evaluator(cfg.test_evaluator)
    shown = []
    with torch.no_grad():
        for batch in runner.test_dataloader:
            data = model.data_preprocessor(batch, False)
            samples = data['data_samples']
            j2d = torch.from_numpy(np.concatenate([ds.gt_instances.joints_2d for ds in samples]))
            coco = j2d[:, COCO17_TO_J24]                                    # (B, 17, 3)
            px = (coco[..., :2] + 1) / 2 * coco.new_tensor([size[1], size[0]])
            maps = render_heatmaps(px, coco[..., 2] > 0, size, sigma)
            random = model(data['inputs'], [ds.clone() for ds in samples], mode='predict')
            oracle = head_model(maps.to(next(head_model.parameters()).device), samples, mode='predict')
            evaluator.process(data_samples=oracle, data_batch=batch)
            for r, o, img in zip(random, oracle, batch['inputs']):
                if len(shown) < num_render:
                    shown.append((img.numpy().transpose(1, 2, 0).copy(), r, o))
    results['oracle_pose_maps'] = {k: round(float(v), 2) for k, v in
                                   evaluator.evaluate(len(runner.test_dataloader.dataset)).items()}
    log(f'toy images, testing without fine-tuning, oracle pose maps: {results["oracle_pose_maps"]}')

    faces = model.data_preprocessor.body_models[0].faces
    rows = []
    for crop, r, o in shown:
        gt = o.gt_instances
        vis = gt.joints_2d[0, :, 2] > 0
        cam = fit_weak_perspective(gt.joints_3d[0, J24_TO_J14, :3], gt.joints_2d[0, J24_TO_J14, :2],
                                   vis[J24_TO_J14])
        tiles = [crop, overlay(crop, gt.vertices[0], faces, cam, (150, 200, 150))]
        for ds, col in ((o, (120, 180, 240)), (r, (200, 160, 230))):
            p = ds.pred_instances
            tiles.append(overlay(crop, p.vertices[0] - p.vertex_root[0], faces, p.camera[0], col))
        rows.append(np.concatenate(tiles, axis=1))
    out_file = osp.join(work_dir, 'images_wo_finetune.png')
    write_grid(rows, ('toy image crop', 'ground truth', 'oracle pose maps', 'random pose net'),
               out_file)
    results['_before'] = [(crop, r) for crop, r, _ in shown]   # for the fine-tuning figure
    return results


def side_view(vertices: np.ndarray, faces: np.ndarray, size: int, color) -> np.ndarray:
    """The mesh seen from its right (camera frame rotated 90 deg about the vertical), framed."""
    from mmpose_mpt.visualization import render_mesh
    rot = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])   # x <- z, depth <- -x
    v = vertices @ rot.T
    lo, hi = v[:, :2].min(0), v[:, :2].max(0)
    s = 0.85 * size / max(float((hi - lo).max()), 1e-6)
    so = np.array([s, size / 2 - s * (lo[0] + hi[0]) / 2, size / 2 - s * (lo[1] + hi[1]) / 2])
    return render_mesh(vertices, faces, size=(size, size), rotation=rot, scale_offset=so, color=color)


def finetune_and_evaluate(data_root: str, work_dir: str, checkpoint: str, before: list,
                          cfg_options: Optional[dict] = None) -> dict:
    """Sec. 3.3 on the toy images: configs/mpt/finetune_toy.py from the pre-trained head (load_from)
    and a random small pose network, trained end to end on the train split; the held-out test split
    before (``before``: crops and predictions of testing without fine-tuning) and after, as one PNG."""
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmpose_mpt.body_models.j24 import J24_TO_J14
    from mmpose_mpt.utils import adapt_cfg_to_device
    cfg = Config.fromfile(osp.join(REPO, 'configs/mpt/finetune_toy.py'))
    opts = image_overrides(data_root)
    opts['train_dataloader.dataset.ann_file'] = osp.join(data_root, 'images', 'tsv', 'train.yaml')
    opts['val_dataloader.dataset.ann_file'] = opts['test_dataloader.dataset.ann_file']
    cfg.merge_from_dict(opts)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(work_dir, 'finetune_toy')
    cfg = adapt_cfg_to_device(cfg)
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    runner.train()
    results = {'train_seconds': round(time.time() - t0, 1)}
    results['after'] = {k: round(float(v), 2) for k, v in runner.test().items()}
    log(f'toy images after end-to-end fine-tuning ({results["train_seconds"]:.0f}s): '
        f'{results["after"]}')

    model = runner.model.eval()
    faces = model.data_preprocessor.body_models[0].faces
    rows = []
    with torch.no_grad():
        batch = next(iter(runner.test_dataloader))
        data = model.data_preprocessor(batch, False)
        after = model(data['inputs'], data['data_samples'], mode='predict')
    for (crop, b), a in zip(before, after):
        gt = a.gt_instances
        vis = gt.joints_2d[0, J24_TO_J14, 2] > 0
        cam = fit_weak_perspective(gt.joints_3d[0, J24_TO_J14, :3], gt.joints_2d[0, J24_TO_J14, :2],
                                   vis)
        size = crop.shape[0]
        tiles = [crop, overlay(crop, gt.vertices[0], faces, cam, (150, 200, 150)),
                 side_view(gt.vertices[0], faces, size, (150, 200, 150))]
        for ds, col in ((b, (200, 160, 230)), (a, (120, 180, 240))):
            p = ds.pred_instances
            v = p.vertices[0] - p.vertex_root[0]
            tiles += [overlay(crop, v, faces, p.camera[0], col), side_view(v, faces, size, col)]
        rows.append(np.concatenate(tiles, axis=1))
    out_file = osp.join(work_dir, 'images_finetune.png')
    write_grid(rows, ('toy image crop', 'ground truth', '(side)', 'before fine-tuning', '(side)',
                      'after fine-tuning', '(side)'), out_file)
    return results


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
    runner, results = pretrain_and_evaluate(args.config, args.data_root, args.work_dir)
    ckpt = osp.join(args.work_dir, 'pretrain_toy', f'epoch_{runner.cfg.train_cfg.max_epochs}.pth')
    images = test_without_finetuning(runner, args.data_root, args.work_dir, ckpt)
    before = images.pop('_before')
    images['finetune'] = finetune_and_evaluate(args.data_root, args.work_dir, ckpt, before)
    results['images'] = images
    with open(osp.join(args.work_dir, 'metrics.json'), 'w') as f:
        json.dump(results, f, indent=2)
    log(f'done in {time.time() - t0:.0f}s; outputs in {args.work_dir}/')


if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    main()
