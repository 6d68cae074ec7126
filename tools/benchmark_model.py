"""Training-step throughput, FLOPs and MFU of MPTHead, against a plain METRO-style reference.

    python tools/benchmark_model.py [--device cpu|cuda] [--dtype bf16|fp32] [--batch-size B]
                                    [--iters N] [--warmup W] [--json] [--small]
                                    [--pose-net higherhrnet_w48|r101 [--image-size S]]

One training step = forward + MPTLoss (all four terms, random targets and a random joint regressor)
+ backward + Adam step, on random (B, K, H, W) pose maps; ``samples/s = B * iters / time``.

Two models of the same shape are timed in the same run:

* **engine**: ``MPTHead`` (pre-LN layers, fused ``F.scaled_dot_product_attention``), in ``--dtype``
  (bf16 = ``torch.autocast(device_type, torch.bfloat16)``, parameters and Adam state stay fp32);
* **reference**: :class:`ReferenceMETROHead` below, a straightforward METRO-style implementation: fp32,
  no autocast, BERT-like post-LN layers with separate Q/K/V projections and explicit
  ``softmax(Q K^T / sqrt(d_head)) V`` matmuls; same tokens (camera + joints + coarse vertices +
  patches), hidden sizes, layers, heads, MLP width, patch MLP, reductions and vertex up-sampling.

FLOPs: analytic forward FLOPs per sample from ``MPTHead.flops_per_sample()`` (2 x multiply-adds of the
matmuls), cross-checked with ``torch.utils.flop_counter.FlopCounterMode`` on one forward of each model
(the CPU flash-attention op, which FlopCounterMode does not know, is counted with its SDPA formula).
A training step is taken as 3 x forward. MFU = achieved FLOP/s / the device's dense peak for the
dtype (CUDA: H100 SXM / H200, A100; "n/a" on CPU and unknown GPUs).

The paper size: K = 17 maps of 224 x 224, patch 8 (784 tokens), 14 joints, 431 / 1723 / 6890 vertices,
hidden 1024 / 256 / 64, 4 layers x 4 heads per block, MLP 2 x hidden (MeshGraphormer), dropout 0.1,
MVM 0.3. ``--small`` is a tiny config for quick checks.
The last line is ``ratio: X.XX`` (engine samples/s / reference samples/s); ``--json`` prints one JSON
object instead.

**Image path** (``--pose-net``, paper Sec. 3.2 / 3.3): inference forward of the whole image model,
``MeshEstimator(backbone + neck = the 2D pose network of configs/mpt/_base_/pose_nets/, MPTHead)`` in
``tensor`` mode on random (B, 3, S, S) crops (S = ``--image-size``, 224 as METRO), eval mode, no grad;
the pose maps are resized to the head's input size. fp32 and bf16 (autocast) are timed interleaved in
the same run (each round runs every variant once), as is the pose network alone (``extract_feat``),
which gives its share of the time. Weights are random (timing does not depend on them). FLOPs per
sample by FlopCounterMode (pose network: convolutions / deconvolutions; head: matmuls, also the
analytic count). ``--small`` uses the tiny head config; ``--dtype`` is not used (both are timed).
The last line is ``ratio: X.XX`` = bf16 samples/s / fp32 samples/s.
"""
import argparse
import json
import math
import os.path as osp
import platform
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils import flop_counter  # noqa: E402

from mmpose_mpt.models.heads import MPTHead  # noqa: E402
from mmpose_mpt.models.heads.mpt_head import vertex_level_names  # noqa: E402
from mmpose_mpt.models.losses import MPTLoss  # noqa: E402
from mmpose_mpt.utils.cli import MPTUserError, check_device  # noqa: E402

# MeshGraphormer's transformer (hidden 1024/256/64, MLP 2x hidden), METRO's dropout 0.1 and MVM 0.3
PAPER_CFG = dict(in_channels=17, input_size=(224, 224), patch_size=8, num_joints=14,
                 num_vertices=(431, 1723, 6890), hidden_dims=(1024, 256, 64), num_layers=4,
                 num_heads=4, mlp_ratio=2.0, mvm_ratio=0.3, dropout=0.1)
SMALL_CFG = dict(in_channels=4, input_size=(32, 32), patch_size=8, num_joints=4,
                 num_vertices=(8, 16, 32), hidden_dims=(64, 32, 16), num_layers=2, num_heads=2,
                 mlp_ratio=2.0, mvm_ratio=0.3, dropout=0.1)

# Dense (no sparsity) peak FLOP/s by CUDA device, from the vendors' datasheets.
_PEAKS = {  # name → {precision: FLOP/s}
    'H100 SXM': {'bf16': 989e12, 'fp32': 67e12, 'tf32': 494e12},
    'A100': {'bf16': 312e12, 'fp32': 19.5e12, 'tf32': 156e12},
}


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'cpu'


def peak_flops(device_name: Optional[str], precision: str) -> Optional[float]:
    """Dense peak FLOP/s of a CUDA device by name for 'bf16' / 'fp32' / 'tf32'; None if unknown / CPU.

    H100 SXM (reported as e.g. 'NVIDIA H100 80GB HBM3') and H200 share the H100 SXM numbers; other H100
    variants (PCIe, NVL) have lower clocks and are not guessed.
    """
    if not device_name:
        return None
    name = device_name.upper()
    if 'H200' in name or ('H100' in name and ('SXM' in name or 'HBM3' in name)):
        key = 'H100 SXM'
    elif 'A100' in name:
        key = 'A100'
    else:
        return None
    return _PEAKS[key].get(precision)


def matmul_precision(device: torch.device, dtype: str) -> str:
    """What the matmuls of a run execute in: 'bf16', 'tf32' (fp32 with TF32 allowed) or 'fp32'."""
    if dtype == 'bf16':
        return 'bf16'
    if device.type == 'cuda' and torch.backends.cuda.matmul.allow_tf32:
        return 'tf32'
    return 'fp32'


# --------------------------------------------------------------------------- reference model
class BertSelfAttention(nn.Module):
    """BERT self-attention with explicit matmuls (no fused SDPA) and the BERT output sub-layer."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'hidden size {dim} is not divisible by {num_heads} heads')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.attn_dropout = nn.Dropout(dropout)
        self.out_dense = nn.Linear(dim, dim)
        self.out_dropout = nn.Dropout(dropout)
        self.out_norm = nn.LayerNorm(dim)

    def _heads(self, t: Tensor) -> Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)    # (B, h, N, d)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)   # (B, h, N, N)
        probs = self.attn_dropout(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, c)
        return self.out_norm(x + self.out_dropout(self.out_dense(ctx)))          # post-LN


class BertLayer(nn.Module):
    """Post-LN BERT layer: attention sub-layer, then GELU intermediate + output + LayerNorm."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.attention = BertSelfAttention(dim, num_heads, dropout)
        hidden = int(dim * mlp_ratio)
        self.intermediate = nn.Linear(dim, hidden)
        self.output = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.attention(x)
        return self.norm(x + self.dropout(self.output(F.gelu(self.intermediate(x)))))


class ReferenceMETROHead(nn.Module):
    """METRO-style reference of MPTHead's shape (fp32, post-LN BERT layers, manual attention).

    Same token layout ``[camera | J joints | V_c coarse vertices | N patches]``, patch MLP, learned
    queries with MVM on their content, the pooled global feature added to every query (METRO's global
    image feature), a learned position embedding at every block's input (METRO),
    block hidden sizes / layers / heads / MLP width, linear reductions between blocks, coordinate /
    camera outputs and linear up-sampling over the vertex dimension; returns the same dict as
    :class:`MPTHead`. What differs is only how it is computed: BERT post-LN layers with separate
    Q / K / V projections and explicit ``softmax(Q K^T / sqrt(d)) V``, fp32 throughout.
    """

    def __init__(self, in_channels: int = 17, input_size: Sequence[int] = (224, 224),
                 patch_size: int = 8, num_joints: int = 14,
                 num_vertices: Sequence[int] = (431, 1723, 6890),
                 hidden_dims: Sequence[int] = (1024, 256, 64), num_layers: int = 4,
                 num_heads: int = 4, mlp_ratio: float = 2.0, mvm_ratio: float = 0.3,
                 dropout: float = 0.1, global_pool: int = 7):
        super().__init__()
        self.global_pool = global_pool
        h, w = input_size
        self.in_channels, self.input_size, self.patch_size = in_channels, (h, w), patch_size
        self.num_joints, self.num_vertices, self.mvm_ratio = num_joints, tuple(num_vertices), mvm_ratio
        self.level_names = vertex_level_names(len(self.num_vertices))
        self.num_input_tokens = (h // patch_size) * (w // patch_size)
        self.num_queries = num_joints + self.num_vertices[0]
        num_tokens = 1 + self.num_queries + self.num_input_tokens
        d0 = hidden_dims[0]
        patch_dim = patch_size * patch_size * in_channels
        self.input_embed = nn.Sequential(nn.Linear(patch_dim, d0), nn.GELU(), nn.Linear(d0, d0))
        global_dim = in_channels * global_pool ** 2
        self.global_embed = nn.Sequential(nn.LayerNorm(global_dim), nn.Linear(global_dim, d0),
                                          nn.GELU(), nn.Linear(d0, d0))
        self.camera_token = nn.Parameter(torch.randn(1, 1, d0) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, self.num_queries, d0) * 0.02)
        self.mask_embed = nn.Parameter(torch.randn(1, 1, d0) * 0.02)
        self.pos_embeds = nn.ParameterList(nn.Parameter(torch.randn(1, num_tokens, d) * 0.02)
                                           for d in hidden_dims)
        self.embed_drop = nn.Dropout(dropout)
        self.reductions = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for i, d in enumerate(hidden_dims):
            self.reductions.append(nn.Identity() if i == 0 else nn.Linear(hidden_dims[i - 1], d))
            self.blocks.append(nn.Sequential(*[BertLayer(d, num_heads, mlp_ratio, dropout)
                                               for _ in range(num_layers)]))
        self.coord_out = nn.Linear(hidden_dims[-1], 3)
        self.query_offsets = nn.Parameter(torch.zeros(1, self.num_queries, 3))
        self.camera_out = nn.Linear(hidden_dims[-1], 3)
        self.upsampling = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(self.num_vertices[:-1], self.num_vertices[1:]))

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        b, k, h, w = x.shape
        p = self.patch_size
        patches = x.reshape(b, k, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        patches = patches.reshape(b, (h // p) * (w // p), p * p * k)
        tokens = self.input_embed(patches)
        queries = self.queries.expand(b, -1, -1)
        if self.training and self.mvm_ratio > 0:   # Masked Vertex Modeling on joint/vertex queries
            mask = torch.rand(b, self.num_queries, 1, device=x.device) < self.mvm_ratio
            queries = torch.where(mask, self.mask_embed, queries)
        queries = torch.cat([self.camera_token.expand(b, -1, -1), queries], dim=1)
        glob = self.global_embed(F.adaptive_avg_pool2d(x, self.global_pool).flatten(1))
        queries = queries + glob[:, None]
        hid = torch.cat([queries, tokens], dim=1)
        for reduce, block, pos in zip(self.reductions, self.blocks, self.pos_embeds):
            hid = block(self.embed_drop(reduce(hid) + pos))
        coords = self.coord_out(hid[:, 1:1 + self.num_queries]) + self.query_offsets
        cam = self.camera_out(hid[:, 0])
        out = {'joints_3d': coords[:, :self.num_joints],
               'camera': torch.cat([F.softplus(cam[:, :1]), cam[:, 1:]], dim=1)}
        verts = coords[:, self.num_joints:]
        out[self.level_names[0]] = verts
        for name, up in zip(self.level_names[1:], self.upsampling):
            verts = up(verts.transpose(1, 2)).transpose(1, 2)
            out[name] = verts
        return out


# --------------------------------------------------------------------------- measurement
def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args,
                            out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _custom_flop_mapping() -> dict:
    """FlopCounterMode knows the CUDA SDPA kernels but not the CPU flash-attention op: add it."""
    mapping = {}
    aten = torch.ops.aten
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flop
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu_backward'):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_sdpa_backward_flop
    return mapping


def count_forward_flops(model: nn.Module, x: Tensor) -> int:
    """FLOPs of one forward of ``model`` on ``x`` (fp32, no grad) by FlopCounterMode, per sample."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), flop_counter.FlopCounterMode(display=False,
                                                            custom_mapping=_custom_flop_mapping()) as fc:
            model(x)
    finally:
        model.train(was_training)
    return fc.get_total_flops() // x.shape[0]


def make_batch(cfg: dict, batch: int, device: torch.device) -> Tuple[Tensor, Dict[str, Tensor], Tensor]:
    """Random pose maps, random targets for every MPTLoss term and a random joint regressor G (J, V)."""
    k, (h, w), j = cfg['in_channels'], cfg['input_size'], cfg['num_joints']
    x = torch.rand(batch, k, h, w, device=device)
    targets = {'joints_3d': torch.randn(batch, j, 3, device=device) * 0.3,
               'joints_2d': torch.rand(batch, j, 2, device=device) * 2 - 1}
    for name, v in zip(vertex_level_names(len(cfg['num_vertices'])), cfg['num_vertices']):
        targets[name] = torch.randn(batch, v, 3, device=device) * 0.3
    regressor = torch.rand(j, cfg['num_vertices'][-1], device=device).softmax(dim=1)
    return x, targets, regressor


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_training(model: nn.Module, x: Tensor, targets: Dict[str, Tensor], regressor: Tensor,
                  device: torch.device, bf16: bool, iters: int, warmup: int) -> Dict[str, object]:
    """Run ``warmup`` + ``iters`` training steps; return samples/s, step time, last loss, output shapes."""
    loss_fn = MPTLoss()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    model.train()
    shapes = {}

    def step() -> Tensor:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            preds = model(x)
            loss = sum(loss_fn(preds, targets, regressor).values())
        if not shapes:
            shapes.update({k: list(v.shape) for k, v in preds.items()})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    loss = None
    for _ in range(iters):
        loss = step()
    _sync(device)
    elapsed = time.perf_counter() - t0
    return dict(samples_per_s=x.shape[0] * iters / elapsed, step_s=elapsed / iters,
                loss=float(loss), output_shapes=shapes)


# --------------------------------------------------------------------------- image path (--pose-net)
POSE_NETS = {'higherhrnet_w48': 'higherhrnet_w48.py', 'r101': 'simplebaseline_r101.py'}


def build_image_model(pose_net: str, head_cfg: dict) -> nn.Module:
    """``MeshEstimator`` with the pose network of ``configs/mpt/_base_/pose_nets/`` and an MPTHead."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS
    path = osp.join(REPO, 'configs', 'mpt', '_base_', 'pose_nets', POSE_NETS[pose_net])
    if not osp.isfile(path):
        raise MPTUserError(f'{path}: pose-network config not found')
    net = Config.fromfile(path).pose_net.to_dict()
    init_default_scope('mmpose')
    return MODELS.build(dict(type='MeshEstimator', backbone=net['backbone'], neck=net['neck'],
                             head=dict(type='MPTHead', **head_cfg), loss=dict(type='MPTLoss'),
                             pose_map_size=head_cfg['input_size']))


class _PoseNetOnly(nn.Module):
    """The pose network of a MeshEstimator (backbone + neck + resize), for separate timing / FLOPs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.extract_feat(x)


def time_forwards(fns: Dict[str, object], device: torch.device, iters: int,
                  warmup: int) -> Dict[str, float]:
    """Seconds per call of each no-argument function, timed interleaved (one call of each per round),
    so that a changing machine load hits all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    totals = dict.fromkeys(fns, 0.0)
    for _ in range(iters):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            totals[name] += time.perf_counter() - t0
    return {k: v / iters for k, v in totals.items()}


def run_pose_net(args: argparse.Namespace, device: torch.device, device_name: str) -> Dict[str, object]:
    """The ``--pose-net`` benchmark: pose network + MPT head forward, fp32 and bf16 side by side."""
    batch = args.batch_size or (32 if device.type == 'cuda' else 2)
    cfg = dict(SMALL_CFG if args.small else PAPER_CFG)
    cfg['in_channels'] = 17                                   # the COCO-17 pose maps
    torch.manual_seed(args.seed)
    model = build_image_model(args.pose_net, cfg).to(device).eval()
    pose_only = _PoseNetOnly(model)
    x = torch.rand(batch, 3, args.image_size, args.image_size, device=device)
    with torch.no_grad():
        pose_map_shape = list(model.neck(model.backbone(x[:1])).shape[1:])
    total_counted = count_forward_flops(model, x[:1])
    pose_counted = count_forward_flops(pose_only, x[:1])
    head_analytic = model.head.flops_per_sample()[0]
    pose_params = sum(p.numel() for m in model.pose_net_modules() for p in m.parameters())
    head_params = sum(p.numel() for p in model.head.parameters())
    shapes = {}

    def forward(fn: nn.Module, bf16: bool):
        def run():
            with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                                 enabled=bf16):
                out = fn(x)
            if fn is model and not shapes:
                shapes.update({k: list(v.shape) for k, v in out.items()})
        return run

    secs = time_forwards({'fp32': forward(model, False), 'bf16': forward(model, True),
                          'pose_net_fp32': forward(pose_only, False),
                          'pose_net_bf16': forward(pose_only, True)}, device, args.iters, args.warmup)
    per_dtype = {}
    for dt in ('fp32', 'bf16'):
        prec = matmul_precision(device, dt)
        peak = peak_flops(device_name, prec) if device.type == 'cuda' else None
        sps = batch / secs[dt]
        achieved = sps * total_counted
        per_dtype[dt] = dict(samples_per_s=sps, step_s=secs[dt], pose_net_step_s=secs[f'pose_net_{dt}'],
                             pose_net_samples_per_s=batch / secs[f'pose_net_{dt}'],
                             pose_net_share=secs[f'pose_net_{dt}'] / secs[dt], precision=prec,
                             achieved_flops_per_s=achieved, peak_flops_per_s=peak,
                             mfu=None if peak is None else achieved / peak)
    result = dict(
        mode='pose_net', pose_net=args.pose_net, config='small' if args.small else 'paper',
        model_config=cfg, device=str(device), device_name=device_name, batch_size=batch,
        image_size=args.image_size, iters=args.iters, warmup=args.warmup,
        threads=torch.get_num_threads(), torch_version=torch.__version__,
        pose_map_shape=pose_map_shape, pose_net_params=pose_params, head_params=head_params,
        flops_per_sample=total_counted, pose_net_flops_per_sample=pose_counted,
        head_flops_per_sample=total_counted - pose_counted, head_analytic_flops_per_sample=head_analytic,
        fp32=per_dtype['fp32'], bf16=per_dtype['bf16'], output_shapes=shapes,
        ratio=per_dtype['bf16']['samples_per_s'] / per_dtype['fp32']['samples_per_s'],
    )
    if args.json:
        print(json.dumps(result))
    else:
        print_pose_net_report(result)
    return result


def print_pose_net_report(r: Dict[str, object]) -> None:
    cfg = r['model_config']
    print(f"pose net + MPTHead forward benchmark ({r['pose_net']}, {r['config']} head config): device "
          f"{r['device']} ({r['device_name']}), torch {r['torch_version']}, {r['threads']} threads, "
          f"batch {r['batch_size']}, {r['image_size']}x{r['image_size']} crops, {r['warmup']} warmup + "
          f"{r['iters']} timed forwards per variant (interleaved)")
    print(f"  pose maps {tuple(r['pose_map_shape'])} -> {cfg['input_size'][0]}x{cfg['input_size'][1]}; "
          f"params: pose net {r['pose_net_params']:,}, MPT head {r['head_params']:,}")
    print(f"forward GFLOP/sample (FlopCounterMode): total {r['flops_per_sample'] / 1e9:.3f} = pose net "
          f"{r['pose_net_flops_per_sample'] / 1e9:.3f} + MPT head {r['head_flops_per_sample'] / 1e9:.3f} "
          f"(head analytic {r['head_analytic_flops_per_sample'] / 1e9:.3f})")
    head = f"{'dtype':<6}{'matmul':>8}{'samples/s':>11}{'step ms':>10}{'pose-net ms':>13}{'share':>8}" \
           f"{'TFLOP/s':>9}{'peak TF/s':>10}{'MFU':>8}"
    print(head)
    print('-' * len(head))
    for dt in ('fp32', 'bf16'):
        d = r[dt]
        print(f"{dt:<6}{d['precision']:>8}{d['samples_per_s']:>11.3f}{d['step_s'] * 1e3:>10.1f}"
              f"{d['pose_net_step_s'] * 1e3:>13.1f}{_fmt(d['pose_net_share'], 0.01, '.0f', '%'):>8}"
              f"{d['achieved_flops_per_s'] / 1e12:>9.3f}{_fmt(d['peak_flops_per_s'], 1e12, '.0f'):>10}"
              f"{_fmt(d['mfu'], 0.01, '.2f', '%'):>8}")
    print('(ratio = bf16 samples/s / fp32 samples/s)')
    print(f"ratio: {r['ratio']:.2f}")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help="'cpu' or 'cuda' (or 'cuda:N')")
    parser.add_argument('--dtype', choices=('bf16', 'fp32'), default='bf16',
                        help='engine precision (the reference is always fp32)')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='samples per step (default: 32 on CUDA, 2 on CPU)')
    parser.add_argument('--iters', type=int, default=10, help='timed training steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed training steps first')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    parser.add_argument('--small', action='store_true', help='tiny config for quick checks')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--pose-net', choices=tuple(POSE_NETS), default=None,
                        help='image path: time pose network + MPT head forward (fp32 and bf16)')
    parser.add_argument('--image-size', type=int, default=224,
                        help='--pose-net crop side in pixels (a multiple of 32; default 224)')
    args = parser.parse_args(argv)
    if args.image_size < 32 or args.image_size % 32:
        parser.error(f'--image-size must be a positive multiple of 32, got {args.image_size}')
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    if args.batch_size is not None and args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    return args


def num_patch_tokens(cfg: dict) -> int:
    (h, w), p = cfg['input_size'], cfg['patch_size']
    return (h // p) * (w // p)


def _fmt(v: Optional[float], scale: float = 1.0, spec: str = '.2f', unit: str = '') -> str:
    return 'n/a' if v is None else f'{v / scale:{spec}}{unit}'


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    try:
        check_device(args.device)
    except MPTUserError as e:
        raise SystemExit(f'benchmark_model: error: {e}') from None
    device = torch.device(args.device)
    if device.type not in ('cpu', 'cuda'):
        raise SystemExit(f'--device must be cpu or cuda, got {args.device!r}')
    device_name = torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_name()
    if args.pose_net:
        try:
            return run_pose_net(args, device, device_name)
        except MPTUserError as e:
            raise SystemExit(f'benchmark_model: error: {e}') from None
    batch = args.batch_size or (32 if device.type == 'cuda' else 2)
    cfg = dict(SMALL_CFG if args.small else PAPER_CFG)
    bf16 = args.dtype == 'bf16'

    torch.manual_seed(args.seed)
    x, targets, regressor = make_batch(cfg, batch, device)

    # ---- engine
    engine = MPTHead(**cfg).to(device)
    flops, flop_parts = engine.flops_per_sample()
    engine_counted = count_forward_flops(engine, x[:1])
    engine_params = sum(p.numel() for p in engine.parameters())
    eng = time_training(engine, x, targets, regressor, device, bf16, args.iters, args.warmup)
    del engine
    if device.type == 'cuda':
        torch.cuda.empty_cache()

    # ---- reference (always fp32, no autocast)
    torch.manual_seed(args.seed)
    reference = ReferenceMETROHead(**cfg).to(device)
    reference_counted = count_forward_flops(reference, x[:1])
    reference_params = sum(p.numel() for p in reference.parameters())
    ref = time_training(reference, x, targets, regressor, device, False, args.iters, args.warmup)
    del reference

    train_flops = 3 * flops
    eng_prec, ref_prec = matmul_precision(device, args.dtype), matmul_precision(device, 'fp32')
    eng_peak = peak_flops(device_name, eng_prec) if device.type == 'cuda' else None
    ref_peak = peak_flops(device_name, ref_prec) if device.type == 'cuda' else None
    eng_flops_s = eng['samples_per_s'] * train_flops
    ref_flops_s = ref['samples_per_s'] * train_flops
    result = dict(
        config='small' if args.small else 'paper', model_config=cfg, device=str(device),
        device_name=device_name, dtype=args.dtype, batch_size=batch, iters=args.iters,
        warmup=args.warmup, threads=torch.get_num_threads(), torch_version=torch.__version__,
        num_tokens=1 + cfg['num_joints'] + cfg['num_vertices'][0] + num_patch_tokens(cfg),
        flops_per_sample=flops, flops_per_sample_parts=flop_parts,
        train_flops_per_sample=train_flops,
        flop_counter_flops_per_sample=engine_counted,
        reference_flop_counter_flops_per_sample=reference_counted,
        params=engine_params, reference_params=reference_params,
        samples_per_s=eng['samples_per_s'], step_s=eng['step_s'], loss=eng['loss'],
        achieved_flops_per_s=eng_flops_s, precision=eng_prec, peak_flops_per_s=eng_peak,
        mfu=None if eng_peak is None else eng_flops_s / eng_peak,
        reference_samples_per_s=ref['samples_per_s'], reference_step_s=ref['step_s'],
        reference_loss=ref['loss'], reference_achieved_flops_per_s=ref_flops_s,
        reference_precision=ref_prec, reference_peak_flops_per_s=ref_peak,
        reference_mfu=None if ref_peak is None else ref_flops_s / ref_peak,
        output_shapes=eng['output_shapes'], reference_output_shapes=ref['output_shapes'],
        ratio=eng['samples_per_s'] / ref['samples_per_s'],
    )
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return result


def print_report(r: Dict[str, object]) -> None:
    cfg = r['model_config']
    print(f"MPTHead training-step benchmark ({r['config']} config): device {r['device']} "
          f"({r['device_name']}), torch {r['torch_version']}, {r['threads']} threads, "
          f"batch {r['batch_size']}, {r['warmup']} warmup + {r['iters']} timed steps")
    print(f"  K={cfg['in_channels']} {cfg['input_size'][0]}x{cfg['input_size'][1]} patch "
          f"{cfg['patch_size']}, joints {cfg['num_joints']}, vertices {cfg['num_vertices']}, hidden "
          f"{cfg['hidden_dims']}, {cfg['num_layers']} layers x {cfg['num_heads']} heads per block, "
          f"{r['num_tokens']} tokens/sample")
    parts = ', '.join(f'{k} {v / 1e9:.3f}' for k, v in r['flops_per_sample_parts'].items())
    print(f"forward GFLOP/sample: analytic {r['flops_per_sample'] / 1e9:.3f} ({parts})")
    fc, fcr, a = r['flop_counter_flops_per_sample'], r['reference_flop_counter_flops_per_sample'], \
        r['flops_per_sample']
    print(f"  FlopCounterMode: engine {fc / 1e9:.3f} ({100 * (fc / a - 1):+.2f}%), reference "
          f"{fcr / 1e9:.3f} ({100 * (fcr / a - 1):+.2f}%)")
    print(f"training GFLOP/sample (3 x forward): {r['train_flops_per_sample'] / 1e9:.3f}")
    rows = [('MPTHead (engine)', r['dtype'], r['precision'], r['params'], r['samples_per_s'],
             r['step_s'], r['achieved_flops_per_s'], r['peak_flops_per_s'], r['mfu'], r['loss']),
            ('METRO reference', 'fp32', r['reference_precision'], r['reference_params'],
             r['reference_samples_per_s'], r['reference_step_s'], r['reference_achieved_flops_per_s'],
             r['reference_peak_flops_per_s'], r['reference_mfu'], r['reference_loss'])]
    head = f"{'model':<18}{'dtype':>6}{'matmul':>8}{'params':>12}{'samples/s':>11}{'step ms':>10}" \
           f"{'TFLOP/s':>9}{'peak TF/s':>10}{'MFU':>8}{'loss':>9}"
    print(head)
    print('-' * len(head))
    for name, dt, prec, params, sps, step, fls, peak, mfu, loss in rows:
        print(f'{name:<18}{dt:>6}{prec:>8}{params:>12,}{sps:>11.3f}{step * 1e3:>10.1f}'
              f'{fls / 1e12:>9.3f}{_fmt(peak, 1e12, ".0f"):>10}{_fmt(mfu, 0.01, ".2f", "%"):>8}'
              f'{loss:>9.4f}')
    print(f"ratio: {r['ratio']:.2f}")


if __name__ == '__main__':
    main()
