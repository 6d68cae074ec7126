"""The embedded default, end to end, on generated data only (README's first command).

    python tools/quickstart.py [--work-dir work_dirs/quickstart] [--data-root data/toy] [--skip-train]

1. writes the licence-free toy body models (SMPL- and MANO-format stand-ins) to ``DATA_ROOT/body_models``;
2. poses the toy body and draws it with its COCO-17 joints (``toy_body.png``);
3. generates toy AMASS-format motion and prepares the MoCap index exactly as for real AMASS;
4. pre-trains ``configs/mpt/pretrain_toy.py`` on it, evaluating on held-out toy motion before and after
   (``metrics.json``);
5. renders predicted vs ground-truth meshes of held-out samples (``pred_vs_gt.png``);
6. renders toy images of held-out motion (``tools/make_toy_images.py``: METRO TSV for the mesh path,
   COCO person keypoints for the 2D one);
7. trains the toy 2D pose network with mmpose's own top-down recipe on the toy images' 2D labels
   (``configs/mpt/pose_net_toy.py``: the stand-in for the paper's COCO-trained HigherHRNet; COCO AP in
   ``metrics.json``);
8. tests the pre-trained head on the held-out images without fine-tuning
   (``configs/mpt/test_wo_finetune_toy.py``, Sec. 3.2): behind the toy pose network (its checkpoint loaded
   as a released one would be) and behind oracle pose maps (heatmaps of the ground-truth 2D joints),
   meshes drawn over the images (``images_wo_finetune.png``);
9. fine-tunes pose network + head end to end on the toy images' train split
   (``configs/mpt/finetune_toy.py``, Sec. 3.3) and evaluates the held-out images again: before / after
   with side views in ``images_finetune.png``.

Everything is idempotent: generated data is reused when it is already there.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


# toy image splits of the embedded default (held-out motion and bodies, see make_toy_images)
DEFAULT_IMAGE_SPLITS = {'train': 400, 'test': 100}


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
    return _mesh_metrics(evaluator.evaluate(len(loader.dataset)))


def pick_render_samples(dataset, num: int, views_per_mesh: int = 2) -> list:
    """Validation items to render: one sequence per kind of motion first (the kind is the file name
    without its take number: ``squat_05_poses`` -> ``squat``), then further sequences, ``num`` in all; of
    each sequence its most articulated mesh (largest body-pose rotation: the deepest squat, the highest
    arm), seen by the first ``views_per_mesh`` virtual cameras (Human3.6M's are ~90 deg apart, so a body
    is seen more from the front by one and more from the side by the next: depth ambiguity included)."""
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
    return [best[seq][1] * views + v for seq in order[:num] for v in range(min(views_per_mesh, views))]


def tile_framing(points: np.ndarray, size: int, fill: float) -> np.ndarray:
    """``render_mesh``'s (s, ox, oy) that centres (N, 2) orthographic points in a ``size`` x ``size`` tile,
    their larger extent ``fill`` of its side."""
    lo, hi = points.min(0), points.max(0)
    s = fill * size / max(float((hi - lo).max()), 1e-6)
    return np.array([s, size / 2 - s * (lo[0] + hi[0]) / 2, size / 2 - s * (lo[1] + hi[1]) / 2])


def render_predictions(runner, out_file: str, num: int = 5, tile: int = 200) -> None:
    """Predicted vs ground-truth meshes of held-out meshes of ``num`` sequences (:func:`pick_render_samples`:
    other sequences, motions and bodies), each seen by two virtual cameras, in the camera's view and from
    its side: one row per mesh, the two cameras side by side."""
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
    side = np.array([[0., 0., -1.], [0., 1., 0.], [1., 0., 0.]])   # camera frame seen from its left
    panels = []
    for ds in samples:
        gt, p = ds.gt_instances.vertices[0], ds.pred_instances
        pred = p.vertices[0] - p.vertex_root[0] if 'vertex_root' in p else p.vertices[0]
        tiles = []
        for rot in (np.eye(3), side):
            # orthographic, camera frame (x right, y down), framed on the ground truth
            so = tile_framing((gt @ rot.T)[:, :2], tile, 0.8)
            tiles += [render_mesh(v, faces, size=(tile, tile), rotation=rot, scale_offset=so, color=col)
                      for v, col in ((pred, (120, 180, 240)), (gt, (150, 200, 150)))]
        panel = np.concatenate(tiles, axis=1)
        label = str(ds.metainfo.get('seq_name', '')).split('/')[-1].replace('_poses', '')
        cv2.putText(panel, f'{label}  camera {ds.metainfo.get("view_index", "?")}', (6, tile - 8),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, (60, 60, 60), 1, cv2.LINE_AA)
        cv2.line(panel, (panel.shape[1] - 1, 0), (panel.shape[1] - 1, tile), (200, 200, 200), 1)
        panels.append(panel)
    views = max(1, int(getattr(loader.dataset, 'num_views', 1)))
    per_row = min(2, views)   # pick_render_samples' views_per_mesh
    blank = np.full_like(panels[0], 255)
    rows = [np.concatenate([panels[i + k] if i + k < len(panels) else blank for k in range(per_row)], axis=1)
            for i in range(0, len(panels), per_row)]
    grid = np.concatenate(rows, axis=0)
    header = np.full((26, grid.shape[1], 3), 255, np.uint8)
    titles = ('prediction', 'ground truth', 'prediction (side)', 'ground truth (side)') * per_row
    for k, text in enumerate(titles):
        cv2.putText(header, text, (6 + tile * k, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                    cv2.LINE_AA)
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
    seconds, after = train_with_final_metrics(runner)
    results['train_seconds'] = round(seconds, 1)
    results['after'] = _mesh_metrics(after)
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


def gt_camera(gt) -> np.ndarray:
    """(s, tx, ty): the weak-perspective camera that draws a ground-truth mesh (which has none) in its
    crop, by least squares over the visible LSP-14 joints (``gt``: a sample's ``gt_instances``)."""
    from mmpose_mpt.apis.full_image_camera import fit_weak_perspective
    from mmpose_mpt.body_models.j24 import J24_TO_J14
    vis = gt.joints_2d[0, J24_TO_J14, 2] > 0
    return fit_weak_perspective(gt.joints_3d[0, J24_TO_J14, :3][vis][None],
                                gt.joints_2d[0, J24_TO_J14, :2][vis][None])[0]


def overlay(crop: np.ndarray, vertices: np.ndarray, faces: np.ndarray, camera: np.ndarray,
            color) -> np.ndarray:
    """The mesh drawn over the (224, 224) crop through the weak-perspective camera (s, tx, ty)."""
    from mmpose_mpt.visualization import render_mesh
    s, tx, ty = camera
    half = crop.shape[1] / 2
    # x_norm = s (x + tx), pixel = (x_norm + 1) * W / 2; depth = z (camera frame)
    so = np.array([s * half, half * (1 + s * tx), half * (1 + s * ty)])
    return render_mesh(vertices, faces, image=crop, rotation=np.eye(3), scale_offset=so, color=color)


def display_crop(crop: np.ndarray, size: int = 224) -> np.ndarray:
    """A (h, w, 3) network crop enlarged to ``size`` for the figures (overlays scale with the crop)."""
    crop = np.ascontiguousarray(crop)
    if crop.shape[0] == size:
        return crop.copy()
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


def write_grid(rows: list, titles: Sequence[str], out_file: str, tile: int = 224) -> None:
    """Rows of equal-width tiles under a header of column titles, as one PNG."""
    grid = np.concatenate(rows, axis=0)
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for k, text in enumerate(titles):
        cv2.putText(header, text, (8 + tile * k, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.imwrite(out_file, np.concatenate([header, grid], axis=0))
    log(f'wrote {out_file}')


def make_images(data_root: str, splits: Optional[dict] = None) -> dict:
    """Toy images of held-out motion under ``DATA_ROOT/images`` (reused when already complete)."""
    from mmpose_mpt.datasets import make_toy_images
    t0 = time.time()
    made = make_toy_images(osp.join(data_root, 'images'), osp.join(data_root, 'body_models'),
                           splits=splits or DEFAULT_IMAGE_SPLITS)
    log(f'toy images in {made["out_dir"]} ({time.time() - t0:.0f}s)')
    return made


def train_pose_net(data_root: str, work_dir: str, cfg_options: Optional[dict] = None) -> Tuple[str, dict]:
    """configs/mpt/pose_net_toy.py: mmpose's top-down heatmap training of the toy 2D pose network on the
    toy images' COCO-layout labels (the stand-in for a COCO-trained checkpoint). Returns its checkpoint
    and {train_seconds, coco/AP, ... on the held-out test split}."""
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmpose_mpt.utils import adapt_cfg_to_device
    cfg = Config.fromfile(osp.join(REPO, 'configs/mpt/pose_net_toy.py'))
    root = osp.join(data_root, 'images') + os.sep
    opts = {f'{k}_dataloader.dataset.data_root': root for k in ('train', 'val', 'test')}
    for k in ('val', 'test'):
        opts[f'{k}_evaluator.ann_file'] = osp.join(root, 'coco', 'person_keypoints_test.json')
    cfg.merge_from_dict(opts)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = osp.join(work_dir, 'pose_net_toy')
    cfg = adapt_cfg_to_device(cfg)
    runner = Runner.from_cfg(cfg)
    seconds, metrics = train_with_final_metrics(runner)
    results = {'train_seconds': round(seconds, 1)}
    results.update({k: round(float(v), 4) for k, v in metrics.items()})
    log(f'toy 2D pose network ({results["train_seconds"]:.0f}s): held-out COCO AP '
        f'{results.get("coco/AP", float("nan")):.3f}')
    return osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth'), results


def _mesh_metrics(values: dict) -> dict:
    return {k: round(float(v), 2) for k, v in values.items()}


def test_without_finetuning(pretrain_runner, data_root: str, work_dir: str, checkpoint: str,
                            pose_net_checkpoint: Optional[str], num_render: int = 4,
                            cfg_options: Optional[dict] = None) -> dict:
    """Sec. 3.2 on rendered toy images: the pre-trained head behind (a) the toy 2D pose network
    (``pose_net_checkpoint``, loaded as a released mmpose checkpoint is; None = random weights) and (b)
    oracle pose maps — heatmaps of the ground-truth 2D joints, what a perfect 2D pose network would
    give — then meshes over the images (``images_wo_finetune.png``)."""
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmpose_mpt.body_models.j24 import COCO17_TO_J24
    from mmpose_mpt.models.data_preprocessors import render_heatmaps
    from mmpose_mpt.utils import adapt_cfg_to_device
    cfg = Config.fromfile(osp.join(REPO, 'configs/mpt/test_wo_finetune_toy.py'))
    cfg.merge_from_dict(image_overrides(data_root))
    cfg.merge_from_dict({'model.pose_net_checkpoint': pose_net_checkpoint})
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(work_dir, 'test_wo_finetune_toy')
    cfg = adapt_cfg_to_device(cfg)
    runner = Runner.from_cfg(cfg)
    name = 'toy_pose_net' if pose_net_checkpoint else 'random_pose_net'
    results = {name: _mesh_metrics(runner.test())}
    log(f'toy images, testing without fine-tuning, {name.replace("_", " ")}: {results[name]}')

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
            net = model(data['inputs'], [ds.clone() for ds in samples], mode='predict')
            oracle = head_model(maps.to(next(head_model.parameters()).device), samples, mode='predict')
            evaluator.process(data_samples=oracle, data_batch=batch)
            for r, o, img in zip(net, oracle, batch['inputs']):
                if len(shown) < num_render:
                    shown.append((display_crop(img.numpy().transpose(1, 2, 0)), r, o))
    results['oracle_pose_maps'] = _mesh_metrics(evaluator.evaluate(len(runner.test_dataloader.dataset)))
    log(f'toy images, testing without fine-tuning, oracle pose maps: {results["oracle_pose_maps"]}')

    faces = model.data_preprocessor.body_models[0].faces
    rows = []
    for crop, r, o in shown:
        gt = o.gt_instances
        tiles = [crop, overlay(crop, gt.vertices[0], faces, gt_camera(gt), (150, 200, 150))]
        for ds, col in ((o, (120, 180, 240)), (r, (200, 160, 230))):
            p = ds.pred_instances
            tiles.append(overlay(crop, p.vertices[0] - p.vertex_root[0], faces, p.camera[0], col))
        rows.append(np.concatenate(tiles, axis=1))
    out_file = osp.join(work_dir, 'images_wo_finetune.png')
    write_grid(rows, ('toy image crop', 'ground truth', 'oracle pose maps', name.replace('_', ' ')),
               out_file)
    results['_before'] = [(crop, r) for crop, r, _ in shown]   # for the fine-tuning figure
    return results


def side_view(vertices: np.ndarray, faces: np.ndarray, size: int, color) -> np.ndarray:
    """The mesh seen from its right (camera frame rotated 90 deg about the vertical), framed."""
    from mmpose_mpt.visualization import render_mesh
    rot = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])   # x <- z, depth <- -x
    so = tile_framing((vertices @ rot.T)[:, :2], size, 0.85)
    return render_mesh(vertices, faces, size=(size, size), rotation=rot, scale_offset=so, color=color)


def finetune_config(data_root: str, work_dir: str, name: str, checkpoint: Optional[str],
                    pose_net_checkpoint: Optional[str], cfg_options: Optional[dict] = None):
    """configs/mpt/finetune_toy.py on ``data_root``'s toy images, head from ``checkpoint`` (None: from
    scratch), pose network from ``pose_net_checkpoint``, run in ``work_dir/name``."""
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config

    from mmpose_mpt.utils import adapt_cfg_to_device
    cfg = Config.fromfile(osp.join(REPO, 'configs/mpt/finetune_toy.py'))
    opts = image_overrides(data_root)
    opts['train_dataloader.dataset.ann_file'] = osp.join(data_root, 'images', 'tsv', 'train.yaml')
    opts['val_dataloader.dataset.ann_file'] = opts['test_dataloader.dataset.ann_file']
    opts['model.pose_net_checkpoint'] = pose_net_checkpoint
    cfg.merge_from_dict(opts)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(work_dir, name)
    return adapt_cfg_to_device(cfg)


def finetune_ablations(data_root: str, work_dir: str, checkpoint: str, pose_net_checkpoint: str,
                       cfg_options: Optional[dict] = None, default_run: Optional[dict] = None) -> dict:
    """``--ablations``: the toy fine-tuning three ways, validated after every epoch — from the pre-trained
    head (the default), from a randomly initialised head (Fig. 4a: with vs without MPT), and with the
    pose network frozen (Table 4) — held-out MPJPE / PA-MPJPE per epoch, plotted in ``ablations.png``.
    ``default_run`` (train_seconds, per_epoch): the default fine-tuning, already run and validated every
    epoch by :func:`finetune_and_evaluate`; it is not trained again."""
    from mmengine.runner import Runner
    runs = {'pre-trained head': (checkpoint, {}),
            'head from scratch': (None, {}),
            'frozen pose network': (checkpoint, {'model.freeze_backbone': True})}
    out = {}
    for label, (ckpt, extra) in runs.items():
        if label == 'pre-trained head' and default_run is not None:
            out[label] = default_run
            continue
        opts = dict(cfg_options or {}, **extra)
        opts['train_cfg.val_interval'] = 1
        cfg = finetune_config(data_root, work_dir, 'ablation_' + label.replace(' ', '_'), ckpt,
                              pose_net_checkpoint, opts)
        seconds, seen = train_validated(Runner.from_cfg(cfg))
        curve = [_mesh_metrics(m) for m in seen]
        out[label] = dict(train_seconds=round(seconds, 1), per_epoch=curve)
        log(f'ablation "{label}": held-out MPJPE per epoch {[c.get("mpjpe") for c in curve]}')
    plot_curves(out, osp.join(work_dir, 'ablations.png'))
    return out


def _epoch_metrics_hook(fn):
    """An mmengine hook calling ``fn(runner, metrics)`` after every validation."""
    from mmengine.hooks import Hook

    class EpochMetricsHook(Hook):
        priority = 'LOWEST'

        def after_val_epoch(self, runner, metrics=None) -> None:
            fn(runner, metrics)
    return EpochMetricsHook()


def train_validated(runner) -> Tuple[float, list]:
    """``runner.train()``; (seconds, the metrics of each of its validations, in order)."""
    seen = []
    runner.register_hook(_epoch_metrics_hook(lambda _runner, metrics: seen.append(dict(metrics or {}))),
                         priority='LOWEST')
    t0 = time.time()
    runner.train()
    return time.time() - t0, seen


def final_metrics(runner, seen: list) -> dict:
    """The metrics of a trained run's last validation (``seen`` from :func:`train_validated`). The toy
    configs validate after the last epoch on the held-out split the quickstart reports: those metrics
    are reused rather than computed again (``runner.test()`` only when the run did not validate)."""
    return seen[-1] if seen and seen[-1] else runner.test()


def train_with_final_metrics(runner) -> Tuple[float, dict]:
    """``runner.train()``; (seconds, :func:`final_metrics`)."""
    seconds, seen = train_validated(runner)
    return seconds, final_metrics(runner, seen)


def plot_curves(runs: dict, out_file: str, size: Tuple[int, int] = (640, 360)) -> None:
    """Held-out MPJPE and PA-MPJPE per fine-tuning epoch of each run, as a PNG (cv2 only)."""
    W, H = size
    img = np.full((H, W, 3), 255, np.uint8)
    x0, y0, x1, y1 = 60, 30, W - 20, H - 40
    values = [c[k] for r in runs.values() for c in r['per_epoch'] for k in ('mpjpe', 'pa_mpjpe') if k in c]
    if not values:
        return
    lo, hi = 0.0, max(values) * 1.1
    epochs = max(len(r['per_epoch']) for r in runs.values())
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
    for t in np.linspace(lo, hi, 5):
        y = int(y1 - (t - lo) / (hi - lo) * (y1 - y0))
        cv2.putText(img, f'{t:.0f}', (8, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for e in range(1, epochs + 1):
        x = int(x0 + (e - 1) / max(epochs - 1, 1) * (x1 - x0))
        cv2.putText(img, str(e), (x - 4, y1 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    colours = [(200, 120, 40), (40, 40, 200), (40, 160, 40)]
    for k, (label, run) in enumerate(runs.items()):
        col = colours[k % len(colours)]
        for key, thick in (('mpjpe', 2), ('pa_mpjpe', 1)):
            pts = [(int(x0 + i / max(epochs - 1, 1) * (x1 - x0)),
                    int(y1 - (c[key] - lo) / (hi - lo) * (y1 - y0)))
                   for i, c in enumerate(run['per_epoch']) if key in c]
            for a, b in zip(pts, pts[1:]):
                cv2.line(img, a, b, col, thick, cv2.LINE_AA)
        # legend top right: the curves start high on the left (a head from scratch) and end lower
        cv2.putText(img, label, (x1 - 190, y0 + 18 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, col, 1,
                    cv2.LINE_AA)
    cv2.putText(img, 'held-out toy images: MPJPE (thick) / PA-MPJPE (thin), mm, per fine-tuning epoch',
                (x0, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(out_file, img)
    log(f'wrote {out_file}')


def finetune_and_evaluate(data_root: str, work_dir: str, checkpoint: str, before: list,
                          pose_net_checkpoint: Optional[str], cfg_options: Optional[dict] = None,
                          per_epoch: bool = False) -> dict:
    """Sec. 3.3 on the toy images: configs/mpt/finetune_toy.py from the pre-trained head (load_from)
    and the toy 2D pose network (``pose_net_checkpoint``), trained end to end on the train split; the
    held-out test split before (``before``: crops and predictions of testing without fine-tuning) and
    after, as one PNG. ``per_epoch``: validate after every epoch too (the ``--ablations`` curve of this
    run, ``results['per_epoch']``; validation does not change the training)."""
    from mmengine.runner import Runner

    if per_epoch:
        cfg_options = dict(cfg_options or {}, **{'train_cfg.val_interval': 1})
    cfg = finetune_config(data_root, work_dir, 'finetune_toy', checkpoint, pose_net_checkpoint, cfg_options)
    runner = Runner.from_cfg(cfg)
    seconds, seen = train_validated(runner)
    results = {'train_seconds': round(seconds, 1), 'after': _mesh_metrics(final_metrics(runner, seen))}
    if per_epoch:
        results['per_epoch'] = [_mesh_metrics(m) for m in seen]
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
        size = crop.shape[0]
        tiles = [crop, overlay(crop, gt.vertices[0], faces, gt_camera(gt), (150, 200, 150)),
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


def start_pose_net_stage(data_root: str, work_dir: str, threads: int, splits: Optional[dict] = None,
                         cfg_options: Optional[dict] = None) -> subprocess.Popen:
    """Toy images + the toy 2D pose network in a child process (``--stage pose-net``), so that it runs
    on one core while pre-training runs on the other: the two need nothing from each other."""
    os.makedirs(work_dir, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log_file = open(osp.join(work_dir, 'pose_net_stage.log'), 'w')
    cmd = [sys.executable, osp.abspath(__file__), '--stage', 'pose-net', '--data-root', data_root,
           '--work-dir', work_dir, '--threads', str(threads),
           '--stage-options', json.dumps(dict(splits=splits, cfg_options=cfg_options))]
    log(f'toy images + 2D pose network in the background (log: {log_file.name})')
    return subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)


def finish_pose_net_stage(proc: subprocess.Popen, work_dir: str) -> Tuple[str, dict]:
    """Wait for :func:`start_pose_net_stage`'s child; its checkpoint and figures (or its log's end)."""
    rc = proc.wait()
    log_path = osp.join(work_dir, 'pose_net_stage.log')
    result = osp.join(work_dir, 'pose_net_toy', 'result.json')
    if rc != 0 or not osp.isfile(result):
        with open(log_path) as fh:
            tail = ''.join(fh.readlines()[-25:])
        raise RuntimeError(f'the toy 2D pose network stage failed (exit {rc}); the end of {log_path}:\n'
                           f'{tail}')
    with open(result) as fh:
        out = json.load(fh)
    log(f'toy 2D pose network ({out["results"]["train_seconds"]:.0f}s, in parallel): held-out COCO AP '
        f'{out["results"].get("coco/AP", float("nan")):.3f}')
    return out['checkpoint'], out['results']


def pose_net_stage(data_root: str, work_dir: str, splits: Optional[dict] = None,
                   cfg_options: Optional[dict] = None) -> None:
    """``--stage pose-net``: toy images, then the toy 2D pose network; writes pose_net_toy/result.json."""
    make_images(data_root, splits)
    ckpt, results = train_pose_net(data_root, work_dir, cfg_options)
    with open(osp.join(work_dir, 'pose_net_toy', 'result.json'), 'w') as fh:
        json.dump(dict(checkpoint=ckpt, results=results), fh, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument('--data-root', default='data/toy')
    parser.add_argument('--config', default=osp.join(REPO, 'configs/mpt/pretrain_toy.py'))
    parser.add_argument('--skip-train', action='store_true', help='stop after the data steps')
    parser.add_argument('--jobs', type=int, default=2 if (os.cpu_count() or 1) >= 2 else 1,
                        help='2: the toy images + 2D pose network train in a child process while the '
                             'head pre-trains (each on half of the cores); 1: one after the other')
    parser.add_argument('--ablations', action='store_true',
                        help='also fine-tune from a head trained from scratch and with a frozen pose '
                             'network, validating every epoch (Fig. 4a, Table 4 on toy data; ~7 min more)')
    parser.add_argument('--stage', choices=['all', 'pose-net'], default='all', help=argparse.SUPPRESS)
    parser.add_argument('--threads', type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument('--stage-options', default='{}', help=argparse.SUPPRESS)
    args = parser.parse_args()
    from mmpose_mpt.utils import keep_freed_memory
    keep_freed_memory()   # the 47 MB up-sampling gradient is not re-faulted in at every step
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    if args.stage == 'pose-net':
        pose_net_stage(args.data_root, args.work_dir, **json.loads(args.stage_options))
        return
    t0 = time.time()

    from mmpose_mpt.body_models import make_toy_body_models
    paths = make_toy_body_models(args.data_root)
    log(f'toy body models in {args.data_root}/body_models ({time.time() - t0:.1f}s)')

    draw_toy_body(paths, osp.join(args.work_dir, 'toy_body.png'))
    log(f'wrote {args.work_dir}/toy_body.png')

    prepare_toy_mocap(args.data_root)
    if args.skip_train:
        return
    threads = torch.get_num_threads()
    proc = None
    if args.jobs > 1:
        half = max(1, (os.cpu_count() or 2) // 2)
        proc = start_pose_net_stage(args.data_root, args.work_dir, half)
        torch.set_num_threads(half)
    try:
        runner, results = pretrain_and_evaluate(args.config, args.data_root, args.work_dir)
    except BaseException:
        if proc is not None:
            proc.kill()
        raise
    torch.set_num_threads(threads)
    if proc is not None:
        pose_net, results['pose_net_2d'] = finish_pose_net_stage(proc, args.work_dir)
    else:
        make_images(args.data_root)
        pose_net, results['pose_net_2d'] = train_pose_net(args.data_root, args.work_dir)
    ckpt = osp.join(args.work_dir, 'pretrain_toy', f'epoch_{runner.cfg.train_cfg.max_epochs}.pth')
    images = test_without_finetuning(runner, args.data_root, args.work_dir, ckpt, pose_net)
    before = images.pop('_before')
    ft = finetune_and_evaluate(args.data_root, args.work_dir, ckpt, before, pose_net,
                               per_epoch=args.ablations)
    images['finetune'] = {k: v for k, v in ft.items() if k != 'per_epoch'}
    results['images'] = images
    if args.ablations:   # the default fine-tuning above is the ablations' 'pre-trained head' run
        results['ablations'] = finetune_ablations(
            args.data_root, args.work_dir, ckpt, pose_net,
            default_run=dict(train_seconds=ft['train_seconds'], per_epoch=ft['per_epoch']))
    results['total_seconds'] = round(time.time() - t0, 1)
    with open(osp.join(args.work_dir, 'metrics.json'), 'w') as f:
        json.dump(results, f, indent=2)
    log(f'done in {time.time() - t0:.0f}s; outputs in {args.work_dir}/')
    log('your own images: python tools/demo.py IMAGE --model mpt-toy --det-model whole_image '
        '--vis-out-dir vis_results --side-view; the hand variant\'s toy: python tools/make_toy_hands.py '
        '&& python tools/train.py configs/mpt/hand/pretrain_toy_hand.py')


if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    main()
