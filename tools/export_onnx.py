"""Export an MPT image model (pose network + MPT head) to ONNX, optionally checking it with onnxruntime.

    python tools/export_onnx.py CONFIG CHECKPOINT --out model.onnx [--check] [--input-size 224 224]
                                [--opset N] [--tol 1e-4] [--repeats 5]
                                [--cfg-options key=value ...]

The file maps normalised crops (B, 3, H, W) (dynamic B) to what ``MeshEstimator.predict`` returns
(vertices, keypoints_3d, keypoints_3d_query, camera, keypoints, vertex_root; see
``mmpose_mpt/apis/onnx_backend.py``) and carries the crop size and the config's mean / std as metadata.
``CHECKPOINT`` may be ``none`` (random weights, for trying the export out).

``--check`` runs the file with onnxruntime and the model with PyTorch on the same random crops at batch
sizes 1 and 3, prints the max abs difference per output and the time per batch, and exits with status 1
if a difference exceeds ``--tol`` (metres for the 3D outputs).
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmpose_mpt.utils.cli import (CfgOptionsAction, check_cfg_options,  # noqa: E402
                                  check_output_file, positive_int, run_tool)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export pose network + MPT head to ONNX')
    parser.add_argument('config', help='an image config, e.g. configs/mpt/test_wo_finetune_toy.py')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for random weights")
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--input-size', nargs=2, type=positive_int, default=None, metavar=('H', 'W'),
                        help='crop size (default: the config\'s MeshImageCrop size, else 224 224)')
    parser.add_argument('--opset', type=positive_int, default=None)
    parser.add_argument('--check', action='store_true', help='compare onnxruntime with PyTorch')
    parser.add_argument('--tol', type=float, default=1e-4, help='max abs diff allowed by --check')
    parser.add_argument('--repeats', type=positive_int, default=5, help='timed runs per batch (--check)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override settings in the config, key=value pairs')
    return parser.parse_args()


def build_model(config: str, checkpoint: str, cfg_options=None):
    """(model in eval mode on CPU, cfg) with the checkpoint loaded as tools/test.py loads it."""
    import mmpose_mpt  # noqa: F401  registers the plugin's components
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    from mmpose.registry import MODELS

    from mmpose_mpt.engine.hooks import StrictCheckpointHook, check_checkpoint_file
    if not osp.isfile(config):
        raise FileNotFoundError(f'{config}: config file not found')
    cfg = Config.fromfile(config)
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    model = MODELS.build(cfg.model)
    if checkpoint.lower() != 'none':
        check_checkpoint_file(checkpoint)
        ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
        hook = StrictCheckpointHook()
        hook.check(model, ckpt, checkpoint, cfg.get('load_partial', False))
        _load_checkpoint_to_model(model, ckpt, strict=False, revise_keys=hook.revise_keys)
    return model.eval(), cfg


def check_parity(model, onnx_file: str, input_size, tol: float, repeats: int = 5) -> float:
    """Print onnxruntime-vs-PyTorch max abs diffs and timings; return the largest diff."""
    import numpy as np
    import torch

    from mmpose_mpt.apis.onnx_backend import OnnxMeshModel
    # the same number of threads for both, so that the times compare the runtimes
    ort_model = OnnxMeshModel(onnx_file, num_threads=torch.get_num_threads())
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    h, w = input_size
    for batch in (1, 3):
        x = torch.randn(batch, 3, h, w, generator=gen)
        with torch.no_grad():
            ref = model.predict(x)
        got = ort_model(x.numpy())
        diffs = {}
        for name in ort_model.output_names + ['keypoint_scores']:
            expect = np.concatenate([getattr(d.pred_instances, name) for d in ref])
            diffs[name] = float(np.abs(got[name] - expect).max())
        worst = max(worst, *(v for k, v in diffs.items() if k != 'keypoints'))
        t_torch, t_ort = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            with torch.no_grad():
                model.predict(x)
            t_torch.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ort_model(x.numpy())
            t_ort.append(time.perf_counter() - t0)
        print(f'batch {batch}: max abs diff ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
        print(f'batch {batch}: median time PyTorch {1e3 * np.median(t_torch):.1f} ms, onnxruntime '
              f'{1e3 * np.median(t_ort):.1f} ms ({torch.get_num_threads()} thread(s) each)')
    print(f'max abs diff (3D outputs, metres; camera): {worst:.2e} (tolerance {tol:g})')
    return worst


def main() -> int:
    args = parse_args()
    check_output_file(args.out, 'ONNX file', suffixes=('.onnx', ))
    model, cfg = build_model(args.config, args.checkpoint, args.cfg_options)
    from mmpose_mpt.apis.onnx_export import config_crop_size, export_onnx
    size = tuple(args.input_size) if args.input_size else config_crop_size(cfg)
    t0 = time.perf_counter()
    export_onnx(model, args.out, input_size=size, opset=args.opset)
    print(f'exported {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB, input (B, 3, {size[0]}, '
          f'{size[1]})) in {time.perf_counter() - t0:.1f} s')
    if args.check:
        worst = check_parity(model, args.out, size, args.tol, args.repeats)
        if not worst <= args.tol:
            print(f'export_onnx.py: error: onnxruntime differs from PyTorch by {worst:.2e} > {args.tol:g}',
                  file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'export_onnx.py'))
