"""MPTHead: the METRO-style mesh-regression transformer of MPT (Sec. 3.1.1, 3.4, Appendix E).

Token layout (one sequence per sample)::

    [camera token | J joint queries | V_c coarse-vertex queries | N pose-map tokens]

* pose-map tokens: the K pose maps (B, K, H, W) are cut into non-overlapping p×p patches, each
  flattened to a (p·p·K)-dim vector and mapped by an MLP to the hidden size (224² and p = 8 → 784
  tokens). In the 2D-coordinate ablation (Table 3a) each joint's (x, y, visible) is one token instead.
* 3 blocks of transformer layers (paper: 4 layers × 4 heads each, hidden 1024 / 256 / 64) with a linear
  dimension reduction between blocks (METRO's progressive reduction); attention is
  ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU).
* joint and vertex query outputs → 3D coordinates (metres, root-relative, camera frame); the coarse mesh
  is up-sampled by linear layers over the vertex dimension (431 → 1723 → 6890, as METRO /
  MeshGraphormer); the camera token → weak-perspective camera (s, tx, ty).
* Masked Vertex Modeling: in training a fraction of the joint/vertex queries is replaced by a learned
  mask embedding (METRO's MVM).

Pre-LayerNorm layers are used (METRO is post-LN BERT): they train stably with Adam at the paper's
2e-4 without BERT's special initialisation; ``norm_first=False`` gives post-LN.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpose.registry import MODELS
from torch import Tensor, nn


def vertex_level_names(num_levels: int) -> List[str]:
    """Output keys from the coarsest to the full mesh: e.g. 3 → vertices_sub2, vertices_sub, vertices."""
    names = []
    for k in range(num_levels - 1, -1, -1):
        names.append('vertices' if k == 0 else ('vertices_sub' if k == 1 else f'vertices_sub{k}'))
    return names


class SelfAttention(nn.Module):
    """Multi-head self-attention on (B, N, C) with fused SDPA."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'hidden size {dim} is not divisible by {num_heads} heads')
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class TransformerLayer(nn.Module):
    """Attention + GELU MLP (intermediate ``mlp_ratio`` × dim), pre- or post-LayerNorm."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 norm_first: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        if self.norm_first:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


@MODELS.register_module()
class MPTHead(BaseModule):
    """Mesh-regression transformer of MPT.

    Args:
        in_channels: K, number of pose maps (17 COCO heatmaps / pose feature maps).
        input_size: (H, W) of the pose maps; multiples of ``patch_size``.
        patch_size: p, side of the square patches (8 in the paper).
        num_joints: J, joint queries (14 = LSP-14 as METRO).
        num_vertices: mesh sizes from the coarse level (the vertex queries) to the full mesh,
            e.g. (431, 1723, 6890) for SMPL, (195, 778) for MANO.
        hidden_dims: hidden size of each block (1024, 256, 64).
        num_layers: layers per block (int or one per block).
        num_heads: attention heads per layer (int or one per block).
        mlp_ratio: MLP width / hidden size inside each layer.
        mvm_ratio: fraction of joint/vertex queries masked in training (Masked Vertex Modeling).
        input_mode: 'heatmap' (B, K, H, W) or 'coords' (B, K, 3) = normalised (x, y) + visibility.
        dropout: attention / MLP dropout.
        norm_first: pre-LN (default) or post-LN layers.
        init_camera_scale: weak-perspective scale at initialisation (≈ 1: a ~1.7 m person fills a
            1.25-padded crop whose normalised side is 2).

    Returns of :meth:`forward` (dict):
        ``joints_3d`` (B, J, 3), one ``vertices*`` entry per level (coarse → full, e.g.
        ``vertices_sub2`` (B, 431, 3), ``vertices_sub`` (B, 1723, 3), ``vertices`` (B, 6890, 3)), all in
        metres, root-relative, camera frame; ``camera`` (B, 3) = (s, tx, ty), s > 0.
    """

    def __init__(self,
                 in_channels: int = 17,
                 input_size: Sequence[int] = (224, 224),
                 patch_size: int = 8,
                 num_joints: int = 14,
                 num_vertices: Sequence[int] = (431, 1723, 6890),
                 hidden_dims: Sequence[int] = (1024, 256, 64),
                 num_layers=4,
                 num_heads=4,
                 mlp_ratio: float = 4.0,
                 mvm_ratio: float = 0.3,
                 input_mode: str = 'heatmap',
                 dropout: float = 0.0,
                 norm_first: bool = True,
                 init_camera_scale: float = 1.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if input_mode not in ('heatmap', 'coords'):
            raise ValueError(f"input_mode must be 'heatmap' or 'coords', got {input_mode!r}")
        h, w = input_size
        if input_mode == 'heatmap' and (h % patch_size or w % patch_size):
            raise ValueError(f'input_size {tuple(input_size)} is not a multiple of patch_size {patch_size}')
        if not 0.0 <= mvm_ratio < 1.0:
            raise ValueError(f'mvm_ratio must be in [0, 1), got {mvm_ratio}')
        nb = len(hidden_dims)
        num_layers = [num_layers] * nb if isinstance(num_layers, int) else list(num_layers)
        num_heads = [num_heads] * nb if isinstance(num_heads, int) else list(num_heads)
        if len(num_layers) != nb or len(num_heads) != nb:
            raise ValueError('num_layers / num_heads need one value per block')

        self.in_channels = in_channels
        self.input_size = (h, w)
        self.patch_size = patch_size
        self.num_joints = num_joints
        self.num_vertices = tuple(num_vertices)
        self.input_mode = input_mode
        self.mvm_ratio = mvm_ratio
        self.level_names = vertex_level_names(len(self.num_vertices))
        d0 = hidden_dims[0]

        if input_mode == 'heatmap':
            self.num_input_tokens = (h // patch_size) * (w // patch_size)
            patch_dim = patch_size * patch_size * in_channels
            self.input_embed = nn.Sequential(nn.Linear(patch_dim, d0), nn.GELU(), nn.Linear(d0, d0))
        else:
            self.num_input_tokens = in_channels
            self.input_embed = nn.Sequential(nn.Linear(3, d0), nn.GELU(), nn.Linear(d0, d0))
        self.input_pos = nn.Parameter(torch.zeros(1, self.num_input_tokens, d0))
        self.camera_query = nn.Parameter(torch.zeros(1, 1, d0))
        self.joint_queries = nn.Parameter(torch.zeros(1, num_joints, d0))
        self.vertex_queries = nn.Parameter(torch.zeros(1, self.num_vertices[0], d0))
        self.type_embed = nn.Parameter(torch.zeros(3, d0))  # camera/joint/vertex query vs input token
        self.mask_embed = nn.Parameter(torch.zeros(1, 1, d0))

        self.blocks = nn.ModuleList()
        self.reductions = nn.ModuleList()
        for i, (d, nl, nh) in enumerate(zip(hidden_dims, num_layers, num_heads)):
            self.reductions.append(nn.Identity() if i == 0 else nn.Linear(hidden_dims[i - 1], d))
            self.blocks.append(nn.Sequential(*[
                TransformerLayer(d, nh, mlp_ratio, dropout, norm_first) for _ in range(nl)]))
        d_last = hidden_dims[-1]
        self.final_norm = nn.LayerNorm(d_last)
        self.coord_out = nn.Linear(d_last, 3)
        self.camera_out = nn.Linear(d_last, 3)
        self.upsampling = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(self.num_vertices[:-1], self.num_vertices[1:]))
        self._init_camera_scale = init_camera_scale
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for p in (self.input_pos, self.camera_query, self.joint_queries, self.vertex_queries,
                  self.type_embed, self.mask_embed):
            nn.init.trunc_normal_(p, std=0.02)
        nn.init.zeros_(self.camera_out.weight)
        # softplus(b) = init scale
        s = self._init_camera_scale
        with torch.no_grad():
            self.camera_out.bias.copy_(torch.tensor([math.log(math.expm1(s)), 0.0, 0.0]))

    def init_weights(self) -> None:
        """mmengine calls this at train start; keep our initialisation unless init_cfg is given."""
        if self.init_cfg is not None:
            super().init_weights()

    # ------------------------------------------------------------------ tokens
    def embed_inputs(self, x: Tensor) -> Tensor:
        """(B, K, H, W) maps or (B, K, 3) coords → (B, N, d0) tokens."""
        if self.input_mode == 'coords':
            if x.dim() != 3 or x.shape[1:] != (self.in_channels, 3):
                raise ValueError(f'coords input must be (B, {self.in_channels}, 3), got {tuple(x.shape)}')
            return self.input_embed(x) + self.input_pos
        b, k, h, w = x.shape
        if (k, h, w) != (self.in_channels, *self.input_size):
            raise ValueError(f'pose maps must be (B, {self.in_channels}, {self.input_size[0]}, '
                             f'{self.input_size[1]}), got {tuple(x.shape)}')
        p = self.patch_size
        # (B, K, H/p, p, W/p, p) → (B, H/p·W/p, p·p·K)
        patches = x.reshape(b, k, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        patches = patches.reshape(b, (h // p) * (w // p), p * p * k)
        return self.input_embed(patches) + self.input_pos

    def build_queries(self, batch: int, device: torch.device) -> Tensor:
        """(B, 1 + J + V_c, d0) camera, joint and vertex queries, MVM-masked in training."""
        cam = (self.camera_query + self.type_embed[0]).expand(batch, -1, -1)
        queries = torch.cat([self.joint_queries + self.type_embed[1],
                             self.vertex_queries + self.type_embed[2]], dim=1).expand(batch, -1, -1)
        if self.training and self.mvm_ratio > 0:
            mask = torch.rand(batch, queries.shape[1], 1, device=device) < self.mvm_ratio
            queries = torch.where(mask, self.mask_embed.to(queries.dtype), queries)
        return torch.cat([cam, queries], dim=1)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """Pose maps (B, K, H, W) (or coords (B, K, 3)) → joints, multi-level vertices, camera."""
        tokens = self.embed_inputs(x)
        b = tokens.shape[0]
        queries = self.build_queries(b, tokens.device).to(tokens.dtype)
        h = torch.cat([queries, tokens], dim=1)
        for reduce, block in zip(self.reductions, self.blocks):
            h = block(reduce(h))
        h = self.final_norm(h)
        nq = 1 + self.num_joints + self.num_vertices[0]
        coords = self.coord_out(h[:, 1:nq])                           # (B, J + V_c, 3)
        cam = self.camera_out(h[:, 0])
        camera = torch.cat([F.softplus(cam[:, :1]), cam[:, 1:]], dim=1)
        out = {'joints_3d': coords[:, :self.num_joints], 'camera': camera}
        verts = coords[:, self.num_joints:]
        out[self.level_names[0]] = verts
        for name, up in zip(self.level_names[1:], self.upsampling):
            verts = up(verts.transpose(1, 2)).transpose(1, 2)         # linear over the vertex dim
            out[name] = verts
        return out

    def flops_per_sample(self) -> Tuple[int, Dict[str, int]]:
        """Analytic forward FLOPs per sample (2 × multiply-adds of the matmuls), by part."""
        n = 1 + self.num_joints + self.num_vertices[0] + self.num_input_tokens
        parts: Dict[str, int] = {}
        first = self.input_embed[0]
        parts['input_mlp'] = 2 * self.num_input_tokens * (first.in_features * first.out_features +
                                                          first.out_features ** 2)
        attn = mlp = red = 0
        prev = None
        for block in self.blocks:
            for layer in block:
                d = layer.norm1.normalized_shape[0]
                hid = layer.mlp[0].out_features
                attn += 2 * (4 * n * d * d + 2 * n * n * d)
                mlp += 2 * 2 * n * d * hid
            if prev is not None:
                red += 2 * n * prev * d
            prev = d
        parts['attention'] = attn
        parts['mlp'] = mlp
        parts['reduction'] = red
        parts['upsampling'] = 2 * 3 * sum(a * b for a, b in zip(self.num_vertices[:-1],
                                                                 self.num_vertices[1:]))
        # coord_out on the J + V_c query tokens and camera_out on the camera token only
        parts['outputs'] = 2 * (1 + self.num_joints + self.num_vertices[0]) * prev * 3
        return sum(parts.values()), parts
