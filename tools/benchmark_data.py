"""Throughput of the MoCap data engine against a per-sample reference pipeline, with an equality check.

    python tools/benchmark_data.py [--device cpu|cuda] [--batch-size 64] [--num-batches 5]
                                   [--heatmap-size 224] [--heatmap-noise STD] [--threads N]
                                   [--data-root DIR] [--json] [--profile]

Two ways of producing the same training batch (heatmaps + mesh targets) from the prepared MoCap index
are timed side by side, batch by batch interleaved so both see the same machine load:

* **reference** (:class:`ReferenceMeshTargets`): what an mmpose data pipeline usually does, everything
  per sample inside the dataset's pipeline: ``RandomVirtualCamera`` → ``MaskedHeatmapModeling`` → an
  SMPL forward with batch 1 (torch, ``no_grad``) → numpy targets (camera-frame vertices root-relative
  to the H36M pelvis, coarse meshes through the sampling matrices, LSP-14 joints, normalised 2D
  joints) → numpy heatmaps, one ``np.exp`` over the full pixel grid per joint (as mmpose's
  ``generate_unbiased_gaussian_heatmaps``, with Eq. 1's σ² instead of 2σ²); then the samples are
  stacked into batch tensors. Always on the CPU (where data pipelines run).
* **engine**: the same samples through the same cheap transforms (``RandomVirtualCamera`` →
  ``MaskedHeatmapModeling`` → ``PackMeshInputs``), ``pseudo_collate``, then
  ``MoCapHeatmapPreprocessor.forward(batch, training=True)`` (the pre-training path) batched on
  ``--device``.

Both sides fetch a batch the way PyTorch's ``DataLoader`` does, ``dataset.__getitems__(indices)``: the
engine's pipeline is made of ``BatchedTransform``s, so the MoCap dataset runs it vectorised over the
batch (exactly the per-item results); the reference's per-sample SMPL transform is not batched, so its
pipeline runs item by item, as an mmpose pipeline does.

Both use ``RandomVirtualCamera(random_view=False)`` and ``MaskedHeatmapModeling(enabled=True,
noise_std=0)`` drawing from numpy's global random state as in training, re-seeded identically before
each side's batch: identical views, masks and jitter, no noise, so the outputs must agree (max abs
difference reported per field; exit status 1 if any exceeds 1e-4). ``--heatmap-noise STD`` turns on
MHM's heatmap noise on both sides (per sample, std ~ U[0, STD]; numpy ``normal`` per sample in the
reference, ``normal_parallel_`` on the batch in the engine) to show what training with noise costs;
the heatmaps then differ by their random noise and are left out of the equality check. Batches are drawn from a fixed
random permutation of the dataset, as a shuffling sampler would (consecutive items are the views of
one mesh).

Timing: one warm-up batch of each first, then ``--num-batches`` batches; samples/s = samples /
seconds spent (dataset access and transforms included for both; each side runs right after the other,
so neither finds its data in the caches). Toy data (body models + toy AMASS
motion + the prepared index) is generated into ``--data-root`` when missing (default: ``data/toy`` if
it already holds a prepared index, else a temporary directory removed at exit).

The last line is ``ratio: X.X`` (engine samples/s / reference samples/s); ``--json`` prints one JSON
object (with a ``ratio`` field) instead. ``--profile`` adds the engine's per-stage times and the
torch-profiler top operators of one preprocessor call.
"""
import argparse
import json
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmpose_mpt.utils.cli import MPTUserError, check_device, positive_int  # noqa: E402

TOLERANCE = 1e-4
COMPARED = ('inputs', 'vertices', 'vertices_sub', 'vertices_sub2', 'joints_3d', 'joints_2d',
            'joints_2d_visible')


# ------------------------------------------------------------------------------------------- toy data
def data_ready(data_root: str) -> bool:
    bm = osp.join(data_root, 'body_models')
    return all(osp.isfile(p) for p in (
        osp.join(data_root, 'mocap', 'train', 'index.json'), osp.join(bm, 'smpl', 'SMPL_NEUTRAL.pkl'),
        osp.join(bm, 'J_regressor_h36m_correct.npy'), osp.join(bm, 'mesh_downsampling.npz')))


def prepare_toy_data(data_root: str, num_sequences: int = 6, seconds: float = 4.0,
                     stride_seconds: float = 0.1) -> str:
    """Toy body models + toy AMASS motion + the prepared index (neutral model) under ``data_root``;
    idempotent. Returns ``data_root``."""
    from mmpose_mpt.body_models import make_toy_body_models
    from mmpose_mpt.datasets.amass_index import prepare_amass
    from mmpose_mpt.datasets.toy_mocap import make_toy_mocap
    make_toy_body_models(data_root)
    amass = osp.join(data_root, 'amass')
    if not osp.isdir(amass):
        make_toy_mocap(amass, num_sequences=num_sequences, seconds=seconds, seed=0)
    prepare_amass(amass, osp.join(data_root, 'mocap'), osp.join(data_root, 'body_models'),
                  stride_seconds=stride_seconds, neutral_only=True, progress=False, verbose=False)
    return data_root


def data_paths(data_root: str) -> Dict[str, str]:
    bm = osp.join(data_root, 'body_models')
    return dict(mocap=osp.join(data_root, 'mocap'), smpl=osp.join(bm, 'smpl'),
                h36m=osp.join(bm, 'J_regressor_h36m_correct.npy'),
                sampling=osp.join(bm, 'mesh_downsampling.npz'))


# ------------------------------------------------------------------------------------ reference
def render_heatmaps_numpy(keypoints: np.ndarray, visible: np.ndarray, size: Sequence[int],
                          sigma: float) -> np.ndarray:
    """(K, 2) keypoints (x, y) in heatmap pixels, (K,) visibility → (K, H, W) float32 maps of Eq. 1,
    one ``np.exp`` over the full grid per joint (mmpose's ``generate_unbiased_gaussian_heatmaps``
    loop, with ``/ σ²`` instead of ``/ (2σ²)``)."""
    h, w = int(size[0]), int(size[1])
    x = np.arange(0, w, 1, dtype=np.float32)
    y = np.arange(0, h, 1, dtype=np.float32)[:, None]
    heatmaps = np.zeros((len(keypoints), h, w), dtype=np.float32)
    for k, mu in enumerate(np.asarray(keypoints, np.float32)):
        if visible[k] < 0.5:
            continue
        heatmaps[k] = np.exp(-((x - mu[0])**2 + (y - mu[1])**2) / np.float32(sigma**2))
    return heatmaps


class ReferenceMeshTargets:
    """Per-sample transform (after ``RandomVirtualCamera`` and ``MaskedHeatmapModeling``): the body
    model, the targets and the heatmaps of one sample, the way a conventional mmpose pipeline would.

    Args:
        smpl: a :class:`mmpose_mpt.body_models.SMPL` (run with batch 1 under ``no_grad``).
        sampling: path of the mesh-sampling ``.npz`` (its scipy ``D`` matrices are applied in numpy).
        heatmap_size: (H, W).
        sigma: σ of Eq. 1.

    Writes ``ref`` = dict(inputs (K, H, W), vertices (V, 3), vertices_sub (V1, 3), vertices_sub2
    (V2, 3), joints_3d (14, 3), joints_2d (14, 2), joints_2d_visible (14,)) into the results (float32
    numpy; metres, camera frame, root-relative to the H36M pelvis; 2D in normalised crop coordinates).
    """

    def __init__(self, smpl, sampling: str, heatmap_size: Sequence[int] = (224, 224),
                 sigma: float = 3.0):
        from mmpose_mpt.body_models.joint_regressors import H36M_J17_TO_J14
        from mmpose_mpt.body_models.mesh_sampler import load_mesh_sampling
        self.smpl = smpl
        self.down = load_mesh_sampling(sampling)['D']        # scipy sparse, level k → k + 1
        h36m = smpl.get_regressor('h36m').detach().cpu().double().numpy()
        self.pelvis_reg = h36m[0]
        self.lsp_reg = h36m[H36M_J17_TO_J14]
        self.heatmap_size = tuple(int(v) for v in heatmap_size)
        self.sigma = float(sigma)

    def __call__(self, results: dict) -> dict:
        # (heatmap noise, when MHM asks for it, is added at the end as an mmpose-style pipeline would)
        pose = torch.as_tensor(np.asarray(results['smpl_pose'], np.float32))[None]
        betas = torch.as_tensor(np.asarray(results['smpl_betas'], np.float32))[None]
        with torch.no_grad():
            out = self.smpl(betas=betas, body_pose=pose[:, 3:], global_orient=pose[:, :3])
            verts = (out['vertices'] - out['joints'][:, :1])[0].numpy().astype(np.float64)
        R, t = np.asarray(results['cam_R'], np.float64), np.asarray(results['cam_t'], np.float64)
        f, c = np.asarray(results['cam_f'], np.float64), np.asarray(results['cam_c'], np.float64)
        warp = np.asarray(results['warp_mat'], np.float64)
        verts_rot = verts @ R.T
        pelvis = self.pelvis_reg @ verts_rot
        v0 = verts_rot - pelvis
        levels = [v0]
        for d in self.down:
            levels.append(d @ levels[-1])
        joints_rot = self.lsp_reg @ verts_rot
        joints_cam = joints_rot + t
        z = joints_cam[:, 2:]
        px = f * joints_cam[:, :2] / np.maximum(z, 1e-6) + c
        crop = px @ warp[:, :2].T + warp[:, 2]
        h, w = self.heatmap_size
        kp = np.asarray(results['heatmap_keypoints'], np.float32)[0]
        vis = np.asarray(results['heatmap_keypoints_visible'], np.float32)[0]
        heatmaps = render_heatmaps_numpy(kp, vis, self.heatmap_size, self.sigma)
        noise = float(results.get('heatmap_noise_std', 0.0))
        if noise > 0:
            heatmaps += np.random.normal(0.0, noise, heatmaps.shape).astype(np.float32)
            np.clip(heatmaps, 0.0, 1.0, out=heatmaps)
        ref = dict(inputs=heatmaps,
                   vertices=levels[0], joints_3d=joints_rot - pelvis,
                   joints_2d=2 * crop / np.array([w, h]) - 1,
                   joints_2d_visible=(z[:, 0] > 1e-3).astype(np.float32))
        for k in range(1, len(levels)):
            ref['vertices_sub' if k == 1 else f'vertices_sub{k}'] = levels[k]
        results['ref'] = {k: np.asarray(v, np.float32) for k, v in ref.items()}
        return results


def collate_reference(items: List[dict]) -> Dict[str, torch.Tensor]:
    """Stack the per-sample reference outputs into batch tensors (what the default collate does)."""
    return {k: torch.from_numpy(np.stack([it['ref'][k] for it in items])) for k in items[0]['ref']}


# ----------------------------------------------------------------------------------------- builders
def cheap_transforms(heatmap_size: Sequence[int], num_views: int = 4,
                     heatmap_noise: float = 0.0) -> List[dict]:
    size = (int(heatmap_size[1]), int(heatmap_size[0]))   # RandomVirtualCamera takes (w, h)
    return [dict(type='RandomVirtualCamera', num_views=num_views, input_size=size, random_view=False),
            dict(type='MaskedHeatmapModeling', enabled=True, noise_std=float(heatmap_noise))]


def build_dataset(mocap_root: str, pipeline: list, split: str = 'train', num_views: int = 4):
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    import mmpose_mpt  # noqa: F401  (registers the transforms / datasets)
    from mmpose.registry import DATASETS
    return DATASETS.build(dict(type='MoCapHeatmapDataset', data_root=mocap_root, split=split,
                               num_views=num_views, pipeline=pipeline, test_mode=True))


def build_preprocessor(paths: Dict[str, str], heatmap_size: Sequence[int], sigma: float = 3.0,
                       input_mode: str = 'heatmap'):
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    import mmpose_mpt  # noqa: F401
    from mmpose.registry import MODELS
    return MODELS.build(dict(
        type='MoCapHeatmapPreprocessor',
        body_model=dict(model_path=paths['smpl'], gender='neutral', h36m_regressor=paths['h36m']),
        mesh_sampler=paths['sampling'], heatmap_size=tuple(heatmap_size), sigma=sigma,
        input_mode=input_mode))


def fetch(dataset, idx: Sequence[int]) -> list:
    """A batch of items the way PyTorch's DataLoader fetches one (``__getitems__`` when the dataset
    has it: the MoCap dataset's batched transforms; the reference's per-sample SMPL transform makes
    its pipeline run item by item)."""
    getitems = getattr(dataset, '__getitems__', None)
    return getitems(list(idx)) if getitems else [dataset[i] for i in idx]


class Bench:
    """The two datasets (reference / engine pipelines over the same index) and the preprocessor."""

    def __init__(self, data_root: str, heatmap_size: Sequence[int] = (224, 224), device: str = 'cpu',
                 split: str = 'train', sigma: float = 3.0, heatmap_noise: float = 0.0):
        from mmpose_mpt.body_models import SMPL
        paths = data_paths(data_root)
        self.device = torch.device(device)
        self.heatmap_size = tuple(heatmap_size)
        self.preprocessor = build_preprocessor(paths, heatmap_size, sigma).to(self.device)
        smpl_cpu = SMPL(paths['smpl'], gender='neutral', h36m_regressor=paths['h36m'])
        self.reference = ReferenceMeshTargets(smpl_cpu, paths['sampling'], heatmap_size, sigma)
        cheap = cheap_transforms(heatmap_size, heatmap_noise=heatmap_noise)
        self.ref_ds = build_dataset(paths['mocap'], cheap + [self.reference], split)
        self.eng_ds = build_dataset(paths['mocap'], cheap + [dict(type='PackMeshInputs')], split)
        self.order = np.random.default_rng(0).permutation(len(self.eng_ds))

    def indices(self, batch: int, batch_size: int) -> List[int]:
        n = len(self.order)
        return [int(self.order[(batch * batch_size + i) % n]) for i in range(batch_size)]

    def run_reference(self, idx: Sequence[int], seed: int = 0) -> Dict[str, torch.Tensor]:
        np.random.seed(seed)
        return collate_reference(fetch(self.ref_ds, idx))

    def run_engine(self, idx: Sequence[int], seed: int = 0) -> dict:
        from mmengine.dataset import pseudo_collate
        np.random.seed(seed)
        batch = pseudo_collate(fetch(self.eng_ds, idx))
        return self.preprocessor(batch, training=True)

    def sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)


def compare(ref: Dict[str, torch.Tensor], eng: dict,
            fields: Sequence[str] = COMPARED) -> Dict[str, float]:
    """Max abs difference per compared field (engine on any device vs the CPU reference)."""
    out = {}
    for k in fields:
        e = eng['inputs'] if k == 'inputs' else eng['targets'][k]
        r = ref[k]
        if tuple(e.shape) != tuple(r.shape):
            raise AssertionError(f'{k}: engine shape {tuple(e.shape)} != reference {tuple(r.shape)}')
        out[k] = float((e.detach().float().cpu() - r.float()).abs().max())
    return out


# ------------------------------------------------------------------------------------------ profile
def profile_engine(bench: Bench, idx: Sequence[int], repeats: int = 3) -> dict:
    """Per-stage wall times (ms, mean of ``repeats``) of one engine batch and the top torch ops."""
    from mmengine.dataset import pseudo_collate

    from mmpose_mpt.models.data_preprocessors import render_heatmaps
    pp = bench.preprocessor

    def timed(fn):
        fn()
        bench.sync()
        t = time.perf_counter()
        for _ in range(repeats):
            fn()        # output dropped at once, as in training (the heatmap buffer is recycled)
        bench.sync()
        return (time.perf_counter() - t) / repeats * 1e3, fn()

    stages = {}
    stages['dataset batch (__getitems__: transforms)'], items = timed(lambda: fetch(bench.eng_ds, idx))
    stages['pseudo_collate'], batch = timed(lambda: pseudo_collate(items))
    stages['preprocessor.forward (total)'], _ = timed(lambda: pp(batch, training=True))
    gts = [ds.gt_instances for ds in batch['data_samples']]
    d = bench.device
    pose = torch.from_numpy(np.concatenate([g.smpl_pose for g in gts])).to(d)
    betas = torch.from_numpy(np.concatenate([g.smpl_betas for g in gts])).to(d)
    gender = torch.zeros(len(gts), dtype=torch.long, device=d)
    kp = torch.stack(list(batch['inputs'])).to(d)
    R = torch.from_numpy(np.concatenate([g.cam_R for g in gts])).to(d)
    with torch.no_grad():
        stages['  SMPL forward, camera frame (V, 3, B)'], verts_vcb = timed(
            lambda: pp.posed_vertices(pose, betas, gender, rotation=R, batch_last=True))
        nv = verts_vcb.shape[0]
        stages['  H36M pelvis + LSP regressors'], _ = timed(
            lambda: pp.joint_regressor @ verts_vcb.view(nv, -1))
        pelvis = verts_vcb[0].clone()
        stages['  re-centre (V, 3, B) + transpose to (B, V, 3)'], _ = timed(
            lambda: verts_vcb.sub_(pelvis).permute(2, 0, 1).contiguous())
        flat = verts_vcb.view(nv, -1)
        stages['  mesh sampler (both levels, rows of 3B)'], _ = timed(
            lambda: pp.mesh_sampler.downsample(pp.mesh_sampler.downsample(flat, 0, 1), 1, 2))
        buf = torch.empty(kp.shape[:2] + pp.heatmap_size, device=d)
        stages['  render_heatmaps (fresh memory: full outer product)'], _ = timed(
            lambda: render_heatmaps(kp[..., :2], kp[..., 2] > 0, pp.heatmap_size, pp.sigma))
        stages['  render_heatmaps (recycled buffer: memset + windows)'], _ = timed(
            lambda: render_heatmaps(kp[..., :2], kp[..., 2] > 0, pp.heatmap_size, pp.sigma, out=buf))
    ref_item = bench.ref_ds.get_data_info(idx[0])
    ref_t = bench.ref_ds.pipeline.transforms
    stages['reference: cheap transforms (1 sample)'], res = timed(
        lambda: ref_t[1](ref_t[0](dict(ref_item))))
    stages['reference: SMPL + targets + heatmaps (1 sample)'], _ = timed(
        lambda: bench.reference(dict(res)))
    smpl = bench.reference.smpl
    p1, b1 = pose[:1].cpu(), betas[:1].cpu()
    with torch.no_grad():
        stages['reference: SMPL batch-1 forward (1 sample)'], _ = timed(
            lambda: smpl(betas=b1, body_pose=p1[:, 3:], global_orient=p1[:, :3]))
    kp1 = np.asarray(res['heatmap_keypoints'][0])
    vis1 = np.asarray(res['heatmap_keypoints_visible'][0])
    stages['reference: numpy heatmaps (1 sample)'], _ = timed(
        lambda: render_heatmaps_numpy(kp1, vis1, bench.heatmap_size, pp.sigma))

    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if d.type == 'cuda' else [])
    with profile(activities=acts) as prof:
        pp(batch, training=True)
        bench.sync()
    key = 'self_cuda_time_total' if d.type == 'cuda' else 'self_cpu_time_total'
    table = prof.key_averages().table(sort_by=key, row_limit=12)
    return dict(stages_ms={k: round(v, 3) for k, v in stages.items()}, top_ops=table)


# --------------------------------------------------------------------------------------------- main
def run(data_root: str, device: str = 'cpu', batch_size: int = 64, num_batches: int = 5,
        heatmap_size: int = 224, profile: bool = False, heatmap_noise: float = 0.0) -> dict:
    size = (heatmap_size, heatmap_size)
    bench = Bench(data_root, size, device, heatmap_noise=heatmap_noise)
    times = dict(reference=0.0, engine=0.0)
    # with noise the heatmaps differ by their random draws: only the targets are compared
    fields = COMPARED if heatmap_noise <= 0 else tuple(k for k in COMPARED if k != 'inputs')
    diffs: Dict[str, float] = {k: 0.0 for k in fields}

    def one(batch_id: int, timed: bool) -> None:
        idx = bench.indices(batch_id, batch_size)
        # alternate the order so neither side always runs on a warm cache
        order = ('reference', 'engine') if batch_id % 2 == 0 else ('engine', 'reference')
        outs = {}
        for name in order:
            bench.sync()
            t = time.perf_counter()
            outs[name] = (bench.run_reference(idx, batch_id) if name == 'reference' else
                          bench.run_engine(idx, batch_id))
            bench.sync()
            if timed:
                times[name] += time.perf_counter() - t
        for k, v in compare(outs['reference'], outs['engine'], fields).items():
            diffs[k] = max(diffs[k], v)

    one(0, timed=False)                       # warm-up
    for b in range(1, num_batches + 1):
        one(b, timed=True)
    n = batch_size * num_batches
    sps = {k: n / v for k, v in times.items()}
    result = dict(
        device=str(bench.device) + (f' ({torch.cuda.get_device_name(bench.device)})'
                                    if bench.device.type == 'cuda' else ''),
        cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(), torch=torch.__version__,
        load_average=[round(v, 2) for v in os.getloadavg()],
        batch_size=batch_size, num_batches=num_batches, heatmap_size=list(size),
        heatmap_noise=heatmap_noise,
        dataset_items=len(bench.eng_ds), data_root=data_root,
        reference_samples_per_s=round(sps['reference'], 2), engine_samples_per_s=round(sps['engine'], 2),
        reference_ms_per_sample=round(1e3 / sps['reference'], 3),
        engine_ms_per_sample=round(1e3 / sps['engine'], 3),
        max_abs_diff={k: float(f'{v:.3g}') for k, v in diffs.items()},
        tolerance=TOLERANCE, equal=bool(max(diffs.values()) <= TOLERANCE),
        ratio=round(sps['engine'] / sps['reference'], 2))
    if profile:
        result['profile'] = profile_engine(bench, bench.indices(1, batch_size))
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu', help="engine device: 'cpu' or 'cuda' (the reference "
                   'always runs on the CPU, as a data pipeline does)')
    p.add_argument('--batch-size', type=positive_int, default=64)
    p.add_argument('--num-batches', type=positive_int, default=5, help='timed batches (after 1 warm-up)')
    p.add_argument('--heatmap-size', type=positive_int, default=224)
    p.add_argument('--heatmap-noise', type=float, default=0.0,
                   help="MHM's heatmap noise_std on both sides (default 0: outputs compared exactly)")
    p.add_argument('--data-root', default=None,
                   help='toy data root (generated when missing); default data/toy if prepared, else '
                   'a temporary directory')
    p.add_argument('--threads', type=positive_int, default=None,
                   help='torch intra-op threads for both sides (default: torch\'s default; a '
                   'DataLoader worker running the reference pipeline would use 1)')
    p.add_argument('--json', action='store_true', help='print one JSON object')
    p.add_argument('--profile', action='store_true', help='also time the engine stages')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        check_device(args.device)
    except MPTUserError as e:
        print(f'benchmark_data: error: {e}', file=sys.stderr)
        return 2
    tmp: Optional[str] = None
    data_root = args.data_root
    if data_root is None:
        default = osp.join(REPO, 'data', 'toy')
        if data_ready(default):
            data_root = default
        else:
            data_root = tmp = tempfile.mkdtemp(prefix='mpt_bench_')
    try:
        if not data_ready(data_root):
            if not args.json:
                print(f'preparing toy data in {data_root} ...', flush=True)
            prepare_toy_data(data_root)
        res = run(data_root, args.device, args.batch_size, args.num_batches, args.heatmap_size,
                  args.profile, args.heatmap_noise)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"device: {res['device']}  torch threads: {res['torch_threads']}  "
              f"1-min load avg: {res['load_average'][0]}  "
              f"batch {res['batch_size']} x {res['num_batches']} timed batches, "
              f"heatmaps {res['heatmap_size'][0]}x{res['heatmap_size'][1]}"
              + (f", heatmap noise std U[0, {res['heatmap_noise']:g}]" if res['heatmap_noise'] else ''))
        print('max abs diff engine vs reference: ' +
              ', '.join(f'{k} {v:.2e}' for k, v in res['max_abs_diff'].items()) +
              f"  ({'OK' if res['equal'] else 'FAIL'}, tolerance {TOLERANCE:g})")
        if 'profile' in res:
            print('stage times (ms):')
            for k, v in res['profile']['stages_ms'].items():
                print(f'  {k:<56s} {v:10.2f}')
            print(res['profile']['top_ops'])
        print(f"reference (per-sample pipeline): {res['reference_samples_per_s']:10.1f} samples/s "
              f"({res['reference_ms_per_sample']:.2f} ms/sample)")
        print(f"engine (batched preprocessor):   {res['engine_samples_per_s']:10.1f} samples/s "
              f"({res['engine_ms_per_sample']:.2f} ms/sample)")
        print(f"ratio: {res['ratio']:.1f}")
    return 0 if res['equal'] else 1


if __name__ == '__main__':
    sys.exit(main())
