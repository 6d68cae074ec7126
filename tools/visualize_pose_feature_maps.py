"""A crop, its 17 pose feature maps and the mesh, for one or two checkpoints (paper Fig. 6 / 9).

    python tools/visualize_pose_feature_maps.py CONFIG CKPT [CKPT_AFTER] --index 0 --out maps.png
        [--split test|val] [--cfg-options ...]

Builds the model of CONFIG (an image config: test_wo_finetune_*.py, finetune_*.py), loads each
checkpoint as ``tools/test.py`` does (``load_partial`` of the config respected), takes sample ``--index``
of the test (or val) dataset and writes one PNG: per checkpoint a row with the crop, the predicted mesh
over it (weak-perspective camera) and the 17 pose feature maps the transformer reads (the neck's
output resized to the head's input, each normalised to its own maximum), COCO-17 names above them.
Two checkpoints (e.g. before / after fine-tuning) give two rows.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmpose_mpt.utils.cli import (CfgOptionsAction, MPTUserError, check_cfg_options,  # noqa: E402
                                  check_output_file, run_tool)

TILE = 224
MAP = 112


def load_model(cfg, checkpoint: str):
    """The config's model with ``checkpoint`` loaded through the project's strict check."""
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmpose.registry import MODELS

    from mmpose_mpt.engine.hooks.strict_checkpoint_hook import (StrictCheckpointHook,
                                                                check_checkpoint_file)
    check_checkpoint_file(checkpoint)
    torch.manual_seed(0)   # weights a checkpoint does not hold (load_partial) are the same every run
    model = MODELS.build(cfg.model)
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    StrictCheckpointHook().check(model, ckpt, checkpoint, cfg.get('load_partial', False))
    state = ckpt['state_dict'] if 'state_dict' in ckpt else ckpt
    # what the check let through: everything fits, or the config's intended partial load (logged)
    model.load_state_dict({k[7:] if k.startswith('module.') else k: v for k, v in state.items()},
                          strict=False)
    return model.eval()


def colour_maps(maps: np.ndarray) -> List[np.ndarray]:
    """(17, H, W) → 17 BGR tiles (MAP x MAP), each map over its own maximum, jet colours."""
    out = []
    for m in maps:
        m = np.clip(m / max(float(m.max()), 1e-6), 0, 1)
        m = cv2.resize((255 * m).astype(np.uint8), (MAP, MAP), interpolation=cv2.INTER_AREA)
        out.append(cv2.applyColorMap(m, cv2.COLORMAP_JET))
    return out


def row(model, batch) -> np.ndarray:
    """One checkpoint's row: crop | mesh over it | 17 labelled maps (two lines of tiles)."""
    from mmpose_mpt.body_models.joint_regressors import COCO17_NAMES
    from mmpose_mpt.visualization import render_mesh
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        maps = model.extract_feat(data['inputs'])[0].float().cpu().numpy()
        pred = model(data['inputs'], data['data_samples'], mode='predict')[0].pred_instances
    crop = batch['inputs'][0].numpy().transpose(1, 2, 0).copy()
    s, tx, ty = pred.camera[0]
    half = crop.shape[1] / 2
    so = np.array([s * half, half * (1 + s * tx), half * (1 + s * ty)])
    verts = pred.vertices[0] - (pred.vertex_root[0] if 'vertex_root' in pred else 0)
    faces = model.data_preprocessor.body_models[0].faces
    mesh = render_mesh(verts, faces, image=crop, rotation=np.eye(3), scale_offset=so)
    tiles = colour_maps(maps)
    for t, name in zip(tiles, COCO17_NAMES):
        cv2.putText(t, name.replace('left_', 'l_').replace('right_', 'r_'), (3, 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    tiles += [np.zeros_like(tiles[0])] * (18 - len(tiles))     # 2 lines of 9
    grid = np.concatenate([np.concatenate(tiles[:9], 1), np.concatenate(tiles[9:], 1)], 0)
    return np.concatenate([cv2.resize(crop, (TILE, TILE)), cv2.resize(mesh, (TILE, TILE)), grid], 1)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoints', nargs='+', help='one or two checkpoints (e.g. before / after)')
    p.add_argument('--index', type=int, default=0, help='sample of the dataset')
    p.add_argument('--split', choices=('test', 'val'), default='test')
    p.add_argument('--out', default='pose_feature_maps.png')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    args = p.parse_args(argv)
    if len(args.checkpoints) > 2:
        p.error('give one or two checkpoints')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS
    args = parse_args(argv)
    check_output_file(args.out, 'figure', ('.png', '.jpg'))
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    if cfg.model.get('backbone') is None:
        raise MPTUserError(f'{args.config}: the model has no pose network (a pre-training config?); '
                           'give an image config (test_wo_finetune_*.py, finetune_*.py)')
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    if not 0 <= args.index < len(dataset):
        raise MPTUserError(f'--index {args.index}: the dataset has {len(dataset)} samples')
    batch = pseudo_collate([dataset[args.index]])
    rows = [row(load_model(cfg, ckpt), batch) for ckpt in args.checkpoints]
    out = np.concatenate(rows, 0)
    cv2.imwrite(args.out, out)
    print(f'wrote {args.out} ({len(rows)} checkpoint(s), sample {args.index})')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
