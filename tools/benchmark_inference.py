"""Inference speed of MeshInferencer: images/s end to end and seconds per stage, side by side per backend.

    python tools/benchmark_inference.py [--model CONFIG_OR_ALIAS] [--weights CKPT] [--images DIR]
        [--num-images 20] [--persons 1] [--det-model CFG] [--fit-smpl] [--render-backend painter]
        [--backends pytorch onnxruntime] [--device cpu] [--threads N] [--cfg-options ...]

Stages (``MeshInferencer.timings``): decode (file → BGR), detect (mmdet person detector; ``--det-model``,
random weights allowed since only its time is measured — the boxes used are the whole image, replicated
``--persons`` times with small shifts, so that the pose network and head always see that many crops),
crop, pose_net (backbone + neck, all persons in one batch), head (MPT head + regressed joints; for
onnxruntime the whole ONNX graph), camera (full-image cameras), fit (SMPL fit, ``--fit-smpl``), render
(meshes over the image + side view), export (JSON + OBJ per person). The first ``--warmup`` images are
not counted. Default images: the toy test images under data/toy/images (rendered if missing).
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import numpy as np  # noqa: E402

from mmpose_mpt.utils.cli import (CfgOptionsAction, check_cfg_options, check_device, positive_int,  # noqa: E402
                                  run_tool)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='MeshInferencer speed per stage')
    p.add_argument('--model', default='configs/mpt/test_wo_finetune_toy.py', help='config file or metafile alias')
    p.add_argument('--weights', help='checkpoint (default: the alias\'s; none with a config: random weights, '
                                     'which time the same)')
    p.add_argument('--images', help='folder of images (default: data/toy/images/images/test)')
    p.add_argument('--num-images', type=positive_int, default=20)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--persons', type=positive_int, default=1, help='crops per image (one batch)')
    p.add_argument('--det-model', help='mmdet config for the detect stage (default: mmpose\'s RTMDet-nano '
                                       "person config, random weights); 'none' to skip")
    p.add_argument('--fit-smpl', action='store_true')
    p.add_argument('--no-render', action='store_true')
    p.add_argument('--render-backend', default='auto')
    p.add_argument('--backends', nargs='+', choices=['pytorch', 'onnxruntime'], default=['pytorch'])
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, help='torch intra-op threads')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return p.parse_args(argv)


def _images(args) -> list:
    from mmpose_mpt.apis.inferencer import list_image_files
    folder = args.images or 'data/toy/images/images/test'
    if not osp.isdir(folder):
        if args.images:
            raise FileNotFoundError(f'{folder}: no such folder')
        from mmpose_mpt.datasets import make_toy_images
        root = 'data/toy'
        if not osp.isdir(osp.join(root, 'body_models')):
            from mmpose_mpt.body_models import make_toy_body_models
            make_toy_body_models(root)
        make_toy_images(osp.join(root, 'images'), osp.join(root, 'body_models'), splits={'test': 100})
    images = list_image_files(folder)[0]
    if not images:
        raise FileNotFoundError(f'{folder}: no images')
    need = args.num_images + args.warmup
    return [images[k % len(images)] for k in range(need)]


def run(args, backend: str, cfg, weights, images, onnx_file=None) -> dict:
    import cv2

    from mmpose_mpt.apis.inferencer import MeshInferencer
    inf = MeshInferencer(cfg, weights, device=args.device, det_model='whole_image', backend=backend,
                         onnx_file=onnx_file, render_backend=args.render_backend)
    detector = None
    if args.det_model != 'none':
        from mmengine.utils import get_installed_path
        det_cfg = args.det_model or osp.join(get_installed_path('mmpose'), '.mim', 'demo', 'mmdetection_cfg',
                                             'rtmdet_nano_320-8xb32_coco-person.py')
        detector = MeshInferencer.__new__(MeshInferencer)   # only its detector
        detector.scope = 'mmpose'
        detector._init_detector(det_cfg, None, 0, args.device)
    out_dir = tempfile.mkdtemp(prefix='bench_inference_')
    sizes = {p: cv2.imread(p).shape[:2] for p in set(images)}   # box sizes, not part of the timing
    total = det_time = 0.0
    for k, path in enumerate(images):
        if k == args.warmup:
            inf.reset_timings()
            total = det_time = 0.0
        h, w = sizes[path]
        t0 = time.perf_counter()
        if detector is not None:   # the detector's own decode is part of its stage
            detector.detect(cv2.imread(path), 0.3, 0.3)
            det_time += time.perf_counter() - t0
        shifts = np.linspace(-0.05, 0.05, args.persons) * w
        boxes = np.array([[s, 0, w + s, h] for s in shifts], np.float32)
        next(inf(path, bboxes=[boxes], fit_smpl=args.fit_smpl, return_vis=not args.no_render,
                 side_view=not args.no_render, pred_out_dir=out_dir, export='obj'))
        total += time.perf_counter() - t0
    stages = dict(inf.timings)
    stages['detect'] = det_time if detector is not None else 0.0
    n = args.num_images
    return dict(per_image={s: stages.get(s, 0.0) / n for s in STAGES}, total=total / n,
                images_per_s=n / total)


STAGES = ('decode', 'detect', 'crop', 'pose_net', 'head', 'camera', 'fit', 'render', 'export')


def main(argv=None) -> int:
    args = parse_args(argv)
    check_device(args.device)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from mmengine.config import Config

    from mmpose_mpt.apis.inferencer import load_model_config
    model, weights = args.model, args.weights
    if osp.isfile(model):
        cfg = Config.fromfile(model)
    else:
        cfg, meta_weights = load_model_config(model)
        weights = weights or meta_weights
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    images = _images(args)
    results = {}
    onnx_file = None
    for backend in args.backends:
        if backend == 'onnxruntime':
            from mmpose_mpt.apis import export_onnx
            from mmpose_mpt.apis.inferencer import MeshInferencer
            src = MeshInferencer(cfg, weights, device='cpu', det_model='whole_image')
            onnx_file = export_onnx(src.model, osp.join(tempfile.mkdtemp(), 'model.onnx'),
                                    input_size=src.input_size)
        results[backend] = run(args, backend, cfg, weights, images, onnx_file)
    import torch
    print(f'\nMeshInferencer on {args.num_images} images ({args.warmup} warm-up not counted), {args.persons} '
          f'person(s) per image, device {args.device}, torch threads {torch.get_num_threads()}, '
          f'model {args.model}, render backend {args.render_backend}')
    head = f'{"stage":<10}' + ''.join(f'{b + " ms/img":>22}' for b in results)
    print(head)
    print('-' * len(head))
    for s in STAGES:
        print(f'{s:<10}' + ''.join(f'{r["per_image"][s] * 1e3:>22.1f}' for r in results.values()))
    print('-' * len(head))
    print(f'{"total":<10}' + ''.join(f'{r["total"] * 1e3:>22.1f}' for r in results.values()))
    print(f'{"images/s":<10}' + ''.join(f'{r["images_per_s"]:>22.2f}' for r in results.values()))
    if args.det_model != 'none':
        print('(detect is timed on the same images with random detector weights; its boxes are not used)')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'benchmark_inference.py'))
