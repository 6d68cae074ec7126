"""Is the image data pipeline the bottleneck? Its per-sample CPU cost against the model's step time.

    python tools/benchmark_image_data.py [--images DIR] [--samples 48] [--workers 4]
                                         [--pose-net higherhrnet_w48|r101|tiny] [--batch-size 4]
                                         [--iters 2] [--device cpu|cuda] [--small] [--json]

Two things are measured in one run, on rendered toy images (``tools/make_toy_images.py``; 320 x 240
JPEGs, generated into a temporary directory when ``--images`` is not given) read through
``MeshImageDataset`` from the METRO TSV (base64 JPEG inside the TSV, as the fine-tuning mixture):

* **loader**: one data-loader worker's cost per sample = dataset access + ``LoadMeshImage`` (decode) +
  ``MeshImageCrop`` (METRO crop, train augmentation) + ``PackMeshInputs``, timed per transform in this
  process over ``--samples`` samples (after a warm-up pass); and the JPEG decode alone with every
  decoder installed here (OpenCV, which LoadMeshImage uses; Pillow; PyTurboJPEG / simplejpeg if present);
* **model**: the fine-tuning step per sample on ``--device``: ``MeshImagePreprocessor`` (normalisation,
  GT meshes) + pose network (the config's HigherHRNet-w48 / SimpleBaseline-R101, or a tiny HRNet) +
  the paper-size MPT head + MPTLoss, forward + backward + Adam step; and the inference step
  (preprocessor + forward, no grad), the testing-without-fine-tuning case.

With W workers the loader delivers W / cost samples/s; it is not the bottleneck while that is at least
the model's samples/s. The last line is ``ratio: X.XX`` = loader samples/s with ``--workers`` workers /
training-step samples/s (>= 1: the model is the bottleneck). Also printed: the workers needed to keep
up with the training and with the inference step. Weights are random (timing does not depend on them).
"""
import argparse
import json
import math
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import torch  # noqa: E402

from mmpose_mpt.utils.cli import check_device, positive_int, run_tool  # noqa: E402

POSE_NETS = ('higherhrnet_w48', 'r101', 'tiny')


def prepare_images(images: Optional[str], tmp: str, num: int) -> str:
    """A toy image set with at least ``num`` test images: ``images`` if given, else generated."""
    from mmpose_mpt.body_models import make_toy_body_models
    from mmpose_mpt.datasets import make_toy_images
    if images is not None:
        return images
    root = osp.join(tmp, 'toy')
    make_toy_body_models(root)
    out = osp.join(root, 'images')
    make_toy_images(out, osp.join(root, 'body_models'), splits={'test': num}, formats=('tsv', ))
    return out


def body_model_dir(images: str) -> str:
    """The body models the toy set was rendered with (``<root>/body_models`` next to ``images``)."""
    bm = osp.join(osp.dirname(osp.abspath(images.rstrip('/'))), 'body_models')
    if not osp.isdir(bm):
        from mmpose_mpt.body_models import make_toy_body_models
        make_toy_body_models(osp.dirname(bm))
    return bm


def pose_net_cfg(name: str) -> Dict[str, dict]:
    from mmengine.config import Config
    if name == 'tiny':
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'mpt', 'test_wo_finetune_toy.py'))
        return dict(backbone=cfg.model.backbone.to_dict(), neck=cfg.model.neck.to_dict())
    file = 'higherhrnet_w48.py' if name == 'higherhrnet_w48' else 'simplebaseline_r101.py'
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mpt', '_base_', 'pose_nets', file))
    return cfg.pose_net.to_dict()


def time_loader(dataset, num: int) -> Dict[str, float]:
    """Mean ms per sample of each pipeline step (one worker), after one warm-up pass."""
    transforms = dataset.pipeline.transforms
    names = ['dataset'] + [type(t).__name__ for t in transforms]
    totals = dict.fromkeys(names, 0.0)
    for rep in range(2):
        for i in range(num):
            t0 = time.perf_counter()
            results = dataset.get_data_info(i % len(dataset))
            t1 = time.perf_counter()
            if rep:
                totals['dataset'] += t1 - t0
            for name, t in zip(names[1:], transforms):
                t0 = time.perf_counter()
                results = t(results)
                t1 = time.perf_counter()
                if rep:
                    totals[name] += t1 - t0
    out = {k: 1000 * v / num for k, v in totals.items()}
    out['total'] = sum(out.values())
    return out


SMALL_HEAD = dict(hidden_dims=(32, 16, 8), num_layers=1, num_heads=2)   # --small: quick checks only


def time_decoders(dataset, num: int) -> Dict[str, float]:
    """ms per JPEG (the dataset's own bytes) for each decoder installed here, to 3-channel BGR.

    OpenCV (what LoadMeshImage uses) and Pillow always; PyTurboJPEG / simplejpeg when installed.
    """
    import io

    import cv2
    import numpy as np
    blobs = []
    for i in range(min(num, len(dataset))):
        info = dataset.get_data_info(i)
        data = info.get('img_bytes')
        if data is None:
            with open(info['img_path'], 'rb') as fh:
                data = fh.read()
        blobs.append(data)
    decoders = {'cv2': lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)}
    try:
        from PIL import Image
        decoders['PIL'] = lambda b: np.asarray(Image.open(io.BytesIO(b)).convert('RGB'))[..., ::-1]
    except ImportError:
        pass
    try:
        from turbojpeg import TurboJPEG
        tj = TurboJPEG()
        decoders['turbojpeg'] = tj.decode
    except Exception:  # noqa: BLE001 - not installed / no libturbojpeg
        pass
    try:
        import simplejpeg
        decoders['simplejpeg'] = lambda b: simplejpeg.decode_jpeg(b, colorspace='BGR')
    except ImportError:
        pass
    out = {}
    for name, fn in decoders.items():
        for b in blobs[:2]:
            fn(b)   # warm-up
        t0 = time.perf_counter()
        for b in blobs:
            fn(b)
        out[name] = round(1000 * (time.perf_counter() - t0) / len(blobs), 3)
    return out


def build_model(pose_net: str, bm: str, device: torch.device, small: bool = False):
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmpose.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mpt', 'pretrain_amass.py'))
    sampling = osp.join(bm, 'mesh_downsampling.npz')
    h36m = osp.join(bm, 'J_regressor_h36m_correct.npy')
    model_cfg = cfg.model.to_dict()
    model_cfg['data_preprocessor'] = dict(
        type='MeshImagePreprocessor', mesh_sampler=sampling,
        body_model=dict(model_path=osp.join(bm, 'smpl'), gender='neutral', h36m_regressor=h36m))
    model_cfg['head']['upsampling_init'] = sampling
    if small:
        model_cfg['head'].update(SMALL_HEAD)
    model_cfg['joint_regressor'] = h36m
    model_cfg.update(pose_net_cfg(pose_net))
    return MODELS.build(model_cfg).to(device)


def time_model(model, batch: dict, iters: int, device: torch.device) -> Dict[str, float]:
    """ms per sample of a training step (forward + backward + Adam) and of an inference step."""
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    n = len(batch['inputs'])

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    def train_step():
        model.train()
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        loss = sum(losses.values())
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()

    def infer_step():
        model.eval()
        with torch.no_grad():
            data = model.data_preprocessor(batch, False)
            model(data['inputs'], data['data_samples'], mode='predict')

    out = {}
    for name, fn in (('train', train_step), ('inference', infer_step)):
        fn()   # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
        out[name] = 1000 * (time.perf_counter() - t0) / (iters * n)
    return out


def run(args: argparse.Namespace) -> Dict[str, object]:
    import mmpose_mpt  # noqa: F401
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS
    init_default_scope('mmpose')
    device = torch.device(args.device)
    tmp = tempfile.mkdtemp(prefix='bench_image_data_')
    try:
        images = prepare_images(args.images, tmp, args.samples)
        bm = body_model_dir(images) if args.images else osp.join(tmp, 'toy', 'body_models')
        from mmengine.config import Config
        pipe = Config.fromfile(osp.join(REPO, 'configs', 'mpt', '_base_', 'datasets',
                                        'mesh_images.py')).image_train_pipeline
        dataset = DATASETS.build(dict(type='MeshImageDataset',
                                      ann_file=osp.join(images, 'tsv', 'test.yaml'),
                                      pipeline=pipe))
        loader = time_loader(dataset, args.samples)
        decoders = time_decoders(dataset, args.samples)
        model = build_model(args.pose_net, bm, device, args.small)
        batch = pseudo_collate([dataset[i % len(dataset)] for i in range(args.batch_size)])
        step = time_model(model, batch, args.iters, device)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loader_rate = args.workers * 1000 / loader['total']
    train_rate = 1000 / step['train']
    infer_rate = 1000 / step['inference']
    return dict(
        machine=f'{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}',
        device=str(device), pose_net=args.pose_net, batch_size=args.batch_size,
        images=f'{len(dataset)} toy JPEGs (TSV)',
        loader_ms_per_sample={k: round(v, 3) for k, v in loader.items()},
        decode_ms_per_image=decoders,
        step_ms_per_sample={k: round(v, 1) for k, v in step.items()},
        workers=args.workers, loader_samples_per_s=round(loader_rate, 1),
        train_samples_per_s=float(f'{train_rate:.4g}'), inference_samples_per_s=float(f'{infer_rate:.4g}'),
        workers_needed_train=math.ceil(train_rate * loader['total'] / 1000),
        workers_needed_inference=math.ceil(infer_rate * loader['total'] / 1000),
        ratio=round(loader_rate / train_rate, 2))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--images', default=None, help='toy image set (tools/make_toy_images.py OUT_DIR); '
                   'default: generated into a temporary directory')
    p.add_argument('--samples', type=positive_int, default=48, help='samples timed through the pipeline')
    p.add_argument('--workers', type=positive_int, default=4,
                   help='data-loader workers (the configs use 4 for testing, 8 for training)')
    p.add_argument('--pose-net', choices=POSE_NETS, default='higherhrnet_w48')
    p.add_argument('--batch-size', type=positive_int, default=4)
    p.add_argument('--iters', type=positive_int, default=2, help='timed model steps (after 1 warm-up)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--small', action='store_true', help='a tiny MPT head instead of the paper size '
                   '(quick checks; the step time is then not the real one)')
    p.add_argument('--json', action='store_true', help='print one JSON object')
    args = p.parse_args(argv)
    check_device(args.device)
    if args.images is not None and not osp.isfile(osp.join(args.images, 'tsv', 'test.yaml')):
        p.error(f'--images {args.images}: no tsv/test.yaml in it (make it with tools/make_toy_images.py)')
    return args


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    r = run(args)
    if args.json:
        print(json.dumps(r))
        return r
    print(f'machine: {r["machine"]}; model device: {r["device"]}; pose net: {r["pose_net"]}; '
          f'batch {r["batch_size"]}; {r["images"]}')
    print('loader, one worker, ms per sample: ' + ', '.join(
        f'{k} {v:.2f}' for k, v in r['loader_ms_per_sample'].items()))
    print('JPEG decode, ms per image: ' + ', '.join(
        f'{k} {v:.3f}' for k, v in r['decode_ms_per_image'].items()))
    print(f'model, ms per sample: training step {r["step_ms_per_sample"]["train"]:.1f}, '
          f'inference {r["step_ms_per_sample"]["inference"]:.1f}')
    print(f'loader with {r["workers"]} workers: {r["loader_samples_per_s"]:.1f} samples/s; model: '
          f'training {r["train_samples_per_s"]:.2f}, inference {r["inference_samples_per_s"]:.2f} '
          f'samples/s; workers needed: training {r["workers_needed_train"]}, inference '
          f'{r["workers_needed_inference"]}')
    print(f'ratio: {r["ratio"]:.2f}')
    return r


if __name__ == '__main__':
    sys.exit(run_tool(lambda: main() and 0))
