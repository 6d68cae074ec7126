"""MPTHead: the METRO-style mesh-regression transformer of MPT (Sec. 3.1.1, 3.4, Appendix E).

Token layout (one sequence per sample, N_t = 1 + J + V_c + N tokens)::

    [camera token | J joint queries | V_c coarse-vertex queries | N pose-map tokens]

* **Pose-map tokens** (Sec. 3.1.1): the K pose maps (B, K, H, W) (MoCap heatmaps in pre-training, pose
  feature maps later) are cut into non-overlapping p×p patches, each flattened to a (p·p·K)-dim vector
  and mapped by a 2-layer MLP to the first hidden size (224² and p = 8 → 784 tokens). In the
  2D-coordinate ablation (Table 3a, ``input_mode='coords'``) each joint's (x, y, visible) is one token.
* **Queries**: learned joint queries (14 = METRO's LSP-14) and coarse-vertex queries (431 for SMPL).
  Every token also gets a learned position embedding (its identity); like METRO, a fresh one is added at
  the input of every block (``block_pos_embed``). The pose-map tokens' position embeddings start as
  fixed 2D sine-cosine codes of their patch (MAE / ViT) and stay learnable: a learned embedding starting
  at random noise carries almost no "where" for the first thousands of steps, and where a joint lies is
  all a heatmap says.
* **Global feature** (METRO / MeshGraphormer, whose architecture MPT re-uses, Appendix E): there every
  joint / vertex query is the template coordinate concatenated with the CNN's global image feature, so
  each query starts from a summary of the whole input and attention only has to refine it. Our input has
  no CNN; its global feature is the pose maps average-pooled to ``global_pool`` × ``global_pool`` cells
  (coarse joint positions; 7 × 7 as a ResNet / HRNet final grid), flattened and mapped by an MLP to the
  first hidden size, then added to the camera token and every query (in ``'coords'`` mode: an MLP over
  all K (x, y, visible) triples). ``global_pool=0`` gives queries that ignore the input until attention
  reads it; on the toy data such a head learns the mean mesh first and its input only very slowly.
* **Transformer**: blocks of layers (paper: 3 blocks × 4 layers × 4 heads, hidden 1024 / 256 / 64 —
  MeshGraphormer's sizes, the codebase MPT builds on) with a linear dimension reduction between blocks.
  METRO's block i maps its input by ``Linear(in_i → hidden_i)`` and its output by
  ``Linear(hidden_i → out_i)`` with ``out_i = in_{i+1}``; two consecutive linear maps collapse into the
  one ``Linear(hidden_i → hidden_{i+1})`` used here, and the last block's ``out = 3`` is the coordinate
  read-out. All tokens (queries and pose-map tokens) go through all blocks; only query outputs are read.
  Attention is ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU).
* **Layer type** (``norm_first``): METRO / MeshGraphormer use post-LN BERT layers (GELU MLP of
  ``intermediate_size`` = 4× hidden in METRO, 2× in MeshGraphormer; ``mlp_ratio`` defaults to 2 as
  MeshGraphormer). We default to pre-LN layers (a LayerNorm before each block's reduction and a final
  LayerNorm): they train stably with Adam at the paper's 2e-4 without BERT's warm-up-sensitive
  post-LN dynamics; ``norm_first=False`` gives BERT's post-LN layers.
* **Masked Vertex Modeling** (METRO's MVM): in training each joint/vertex query is replaced by a learned
  mask embedding with probability ``mvm_ratio``. Only the query *content* is masked; the position
  embedding is kept (as in METRO, whose masked template features still receive BERT position
  embeddings), so a masked query still knows which joint / vertex it must predict.
* **Output stage** (fp32 even under autocast: bf16 carries ~3 significant digits, i.e. millimetres at
  metre scale): joint and vertex query outputs → 3D coordinates (metres, root-relative, camera frame)
  as a learned per-query template (``query_offsets``: the mean joint / coarse vertex, METRO's template
  mesh in its queries plays this part) plus a linear read-out of the token that starts near zero;
  the coarse mesh is up-sampled by linear layers over the vertex dimension (431 → 1723 → 6890, as
  METRO / MeshGraphormer's ``upsampling`` / ``upsampling2``; any number of levels ≥ 1, e.g. MANO
  195 → 778), optionally initialised from the mesh sampler's barycentric up-sampling matrices.
* **Camera**: a dedicated camera token's output → (s, tx, ty) of the weak-perspective camera
  (FastMETRO-style). METRO instead applies a linear map to its per-token 3D outputs (3 → 1, 431 → 250
  → 3): purely linear in the predicted coarse mesh; the token attends to the pose-map tokens directly,
  which is where the person's 2D position and size are visible. ``s = softplus(·)`` > 0, initialised to
  ``init_camera_scale`` with t = 0: our 2D targets are normalised crop coordinates (the crop's side
  spans 2) and our 3D targets are metres, root-relative; the crop is the 2D-keypoint box padded by 1.25,
  so a ~1.6 m keypoint extent spans ~2 m of crop, i.e. s ≈ 2 / 2 m ≈ 1 (per metre).
"""
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpose.registry import MODELS
from torch import Tensor, nn


def vertex_level_names(num_levels: int) -> List[str]:
    """Output keys from the coarsest to the full mesh: 3 → vertices_sub2, vertices_sub, vertices;
    2 → vertices_sub, vertices; 1 → vertices."""
    if num_levels < 1:
        raise ValueError(f'need at least one mesh level, got {num_levels}')
    names = []
    for k in range(num_levels - 1, -1, -1):
        names.append('vertices' if k == 0 else ('vertices_sub' if k == 1 else f'vertices_sub{k}'))
    return names


class SelfAttention(nn.Module):
    """Multi-head self-attention on (B, N, C) with fused SDPA (one QKV projection)."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'MPTHead: hidden size {dim} is not divisible by {num_heads} heads')
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, C) → (B, N, C)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class TransformerLayer(nn.Module):
    """Self-attention + GELU MLP (``mlp_ratio`` × dim wide), pre-LN (default) or post-LN (BERT)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0,
                 norm_first: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(round(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, C) → (B, N, C)."""
        if self.norm_first:
            x = x + self.drop(self.attn(self.norm1(x)))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.drop(self.attn(x)))
        return self.norm2(x + self.mlp(x))


def sincos_2d(height: int, width: int, dim: int) -> Tensor:
    """Fixed 2D sine-cosine position codes (MAE), (height·width, dim) in row-major patch order.

    Half of the channels encode the row, half the column, each as sin/cos at geometric frequencies;
    ``dim`` not divisible by 4 is zero-padded.
    """
    quarter = dim // 4
    freq = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float64) / max(quarter, 1)))
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                                torch.arange(width, dtype=torch.float64), indexing='ij')
    codes = []
    for grid in (rows.reshape(-1), cols.reshape(-1)):
        angle = grid[:, None] * freq[None]
        codes += [angle.sin(), angle.cos()]
    out = torch.cat(codes, dim=1)
    return F.pad(out, (0, dim - out.shape[1])).float()


def _per_block(value: Union[int, Sequence[int]], num_blocks: int, name: str) -> List[int]:
    values = [value] * num_blocks if isinstance(value, int) else list(value)
    if len(values) != num_blocks or any(int(v) < 1 for v in values):
        raise ValueError(f'MPTHead: {name} needs one positive value per block ({num_blocks}), '
                         f'got {value!r}')
    return [int(v) for v in values]


@MODELS.register_module()
class MPTHead(BaseModule):
    """Mesh-regression transformer of MPT (see the module docstring for the design).

    Args:
        in_channels: K, number of pose maps (17 COCO heatmaps / pose feature maps) or of joints in
            ``'coords'`` mode.
        input_size: (H, W) of the pose maps; multiples of ``patch_size`` (ignored in ``'coords'`` mode).
        patch_size: p, side of the square patches (8 in the paper).
        num_joints: J, joint queries (14 = LSP-14 as METRO; 21 for MANO).
        num_vertices: mesh sizes from the coarse level (= the vertex queries) to the full mesh,
            e.g. (431, 1723, 6890) for SMPL, (195, 778) for MANO; at least one level.
        hidden_dims: hidden size of each block (paper: 1024, 256, 64).
        num_layers: layers per block (int or one per block; paper: 4).
        num_heads: attention heads per layer (int or one per block; paper: 4).
        mlp_ratio: MLP width / hidden size inside each layer (MeshGraphormer: 2, METRO: 4).
        mvm_ratio: probability that a joint/vertex query is masked in training (Masked Vertex
            Modeling; METRO / MeshGraphormer: 0.3); 0 disables it and freezes the then unused mask token
            (set at construction: build the head with the ratio it trains with).
        input_mode: ``'heatmap'``: (B, K, H, W) maps; ``'coords'``: (B, K, 3) = normalised crop
            coordinates (x, y) in [-1, 1] + visibility (coordinates of invisible joints are ignored).
        dropout: attention / MLP / embedding dropout (METRO / MeshGraphormer: 0.1). On CUDA the fused
            attention kernels apply it; on CPU attention dropout forces the unfused math path (~10x
            slower), so CPU-sized configs (``pretrain_toy.py``) use 0.
        norm_first: pre-LN layers (default) or BERT's post-LN layers.
        block_pos_embed: add a fresh learned position embedding at every block's input (METRO);
            otherwise only at the first block.
        init_camera_scale: weak-perspective scale s at initialisation (> 0; ≈ 1, see module docstring).
        global_pool: side of the average-pooled grid of the global feature added to every query
            (module docstring); 0 disables the global feature.
        upsampling_init: optional mesh-sampling ``.npz`` (ours or METRO's ``mesh_downsampling.npz``):
            the up-sampling layers start as its barycentric U matrices (bias 0) instead of random.
        smooth_vertex_queries: steps of neighbour averaging of the vertex query codes over the coarse
            mesh of ``upsampling_init`` (its faces), then re-standardised; 0 keeps i.i.d. codes.
            Neighbouring vertices then start with similar codes, so their predicted offsets start
            correlated (METRO's queries carry the template coordinates for the same reason) and short
            schedules give smooth meshes instead of per-vertex noise. Only the initialisation changes.
        learn_upsampling: train the up-sampling layers (the paper). False keeps them at their
            initialisation (``upsampling_init``'s barycentric matrices): for short CPU schedules, where
            the 12.6 M up-sampling weights would cost a third of every step in Adam alone.
        init_cfg: mmengine init config (None keeps the initialisation done here).

    Forward returns a dict (all float32, metres, root-relative, camera frame):
        ``joints_3d`` (B, J, 3); one ``vertices*`` entry per level from coarse to full (names from
        :func:`vertex_level_names`, e.g. ``vertices_sub2`` (B, 431, 3), ``vertices_sub`` (B, 1723, 3),
        ``vertices`` (B, 6890, 3)); ``camera`` (B, 3) = (s, tx, ty) with s > 0.
    """

    def __init__(self,
                 in_channels: int = 17,
                 input_size: Sequence[int] = (224, 224),
                 patch_size: int = 8,
                 num_joints: int = 14,
                 num_vertices: Sequence[int] = (431, 1723, 6890),
                 hidden_dims: Sequence[int] = (1024, 256, 64),
                 num_layers: Union[int, Sequence[int]] = 4,
                 num_heads: Union[int, Sequence[int]] = 4,
                 mlp_ratio: float = 2.0,
                 mvm_ratio: float = 0.3,
                 input_mode: str = 'heatmap',
                 dropout: float = 0.1,
                 norm_first: bool = True,
                 block_pos_embed: bool = True,
                 init_camera_scale: float = 1.0,
                 global_pool: int = 7,
                 upsampling_init: Optional[Union[str, os.PathLike]] = None,
                 smooth_vertex_queries: int = 0,
                 learn_upsampling: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if input_mode not in ('heatmap', 'coords'):
            raise ValueError(f"MPTHead: input_mode must be 'heatmap' or 'coords', got {input_mode!r}")
        h, w = (int(s) for s in input_size)
        if input_mode == 'heatmap' and (h % patch_size or w % patch_size):
            raise ValueError(f'MPTHead: input_size {(h, w)} is not a multiple of patch_size '
                             f'{patch_size}')
        if not 0.0 <= mvm_ratio < 1.0:
            raise ValueError(f'MPTHead: mvm_ratio must be in [0, 1), got {mvm_ratio}')
        if not init_camera_scale > 0:
            raise ValueError(f'MPTHead: init_camera_scale must be > 0, got {init_camera_scale}')
        if len(num_vertices) < 1 or any(int(v) < 1 for v in num_vertices):
            raise ValueError(f'MPTHead: num_vertices needs >= 1 positive level sizes, got '
                             f'{num_vertices!r}')
        if int(global_pool) < 0:
            raise ValueError(f'MPTHead: global_pool must be >= 0, got {global_pool}')
        if len(hidden_dims) < 1:
            raise ValueError('MPTHead: hidden_dims needs at least one block')
        nb = len(hidden_dims)
        self.hidden_dims = [int(d) for d in hidden_dims]
        layers = _per_block(num_layers, nb, 'num_layers')
        heads = _per_block(num_heads, nb, 'num_heads')

        self.in_channels = in_channels
        self.input_size = (h, w)
        self.patch_size = patch_size
        self.num_joints = num_joints
        self.num_vertices = tuple(int(v) for v in num_vertices)
        self.input_mode = input_mode
        self.mvm_ratio = mvm_ratio
        self.level_names = vertex_level_names(len(self.num_vertices))
        self.num_queries = num_joints + self.num_vertices[0]
        d0 = self.hidden_dims[0]

        if input_mode == 'heatmap':
            self.num_input_tokens = (h // patch_size) * (w // patch_size)
            token_dim = patch_size * patch_size * in_channels
        else:
            self.num_input_tokens = in_channels
            token_dim = 3
        self.num_tokens = 1 + self.num_queries + self.num_input_tokens
        self.input_embed = nn.Sequential(nn.Linear(token_dim, d0), nn.GELU(), nn.Linear(d0, d0))
        self.global_pool = int(global_pool)
        if self.global_pool:
            global_dim = (in_channels * self.global_pool ** 2 if input_mode == 'heatmap'
                          else in_channels * 3)
            # LayerNorm first: pooled heatmaps are tiny (mean ~1e-3) and pose feature maps have any scale
            self.global_embed = nn.Sequential(nn.LayerNorm(global_dim), nn.Linear(global_dim, d0),
                                              nn.GELU(), nn.Linear(d0, d0))
        else:
            self.global_embed = None
        self.camera_token = nn.Parameter(torch.zeros(1, 1, d0))
        self.joint_queries = nn.Parameter(torch.zeros(1, num_joints, d0))
        self.vertex_queries = nn.Parameter(torch.zeros(1, self.num_vertices[0], d0))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d0))
        pos_dims = self.hidden_dims if block_pos_embed else self.hidden_dims[:1]
        self.pos_embeds = nn.ParameterList(
            nn.Parameter(torch.zeros(1, self.num_tokens, d)) for d in pos_dims)
        self.embed_drop = nn.Dropout(dropout)

        self.reductions = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for i, (d, nl, nh) in enumerate(zip(self.hidden_dims, layers, heads)):
            if i == 0:
                self.reductions.append(nn.Identity())
            else:
                prev = self.hidden_dims[i - 1]
                # pre-LN: the residual stream is un-normalised here (Swin's patch merging: norm, linear)
                norm = nn.LayerNorm(prev) if norm_first else nn.Identity()
                self.reductions.append(nn.Sequential(norm, nn.Linear(prev, d)))
            self.blocks.append(nn.Sequential(*[
                TransformerLayer(d, nh, mlp_ratio, dropout, norm_first) for _ in range(nl)]))
        d_last = self.hidden_dims[-1]
        self.final_norm = nn.LayerNorm(d_last) if norm_first else nn.Identity()
        self.coord_out = nn.Linear(d_last, 3)
        # learned template: the mean of every joint / coarse vertex, so the transformer predicts
        # deviations from it (METRO feeds the template mesh into its queries for the same reason)
        self.query_offsets = nn.Parameter(torch.zeros(1, self.num_queries, 3))
        self.camera_out = nn.Linear(d_last, 3)
        self.upsampling = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(self.num_vertices[:-1], self.num_vertices[1:]))
        self.init_camera_scale = float(init_camera_scale)
        if int(smooth_vertex_queries) < 0:
            raise ValueError(f'MPTHead: smooth_vertex_queries must be >= 0, got {smooth_vertex_queries}')
        if smooth_vertex_queries and upsampling_init is None:
            raise ValueError('MPTHead: smooth_vertex_queries needs upsampling_init (the coarse mesh faces)')
        self.smooth_vertex_queries = int(smooth_vertex_queries)
        if not learn_upsampling and upsampling_init is None:
            raise ValueError('MPTHead: learn_upsampling=False needs upsampling_init (else the up-sampling '
                             'stays random)')
        self.learn_upsampling = bool(learn_upsampling)
        self._reset_parameters()
        if upsampling_init is not None:
            self.load_upsampling(upsampling_init)
        self.upsampling.requires_grad_(self.learn_upsampling)
        # without MVM the mask token takes no part in the loss: DDP would stop at the unused parameter
        self.mask_token.requires_grad_(self.mvm_ratio > 0)

    # ------------------------------------------------------------------ initialisation
    def _reset_parameters(self) -> None:
        # Query contents start as unit-variance codes (nn.Embedding's init): they must stand out against
        # the global feature added to all of them, else every query reads the same and the head collapses
        # to the mean mesh before it learns the input. Position embeddings start small (ViT).
        for p in (self.camera_token, self.joint_queries, self.vertex_queries, self.mask_token):
            nn.init.normal_(p, std=1.0)
        for p in self.pos_embeds:
            nn.init.trunc_normal_(p, std=0.02)
        # near-zero coordinates at initialisation (the template starts at 0): no random metre-sized
        # outputs to unlearn first
        nn.init.normal_(self.coord_out.weight, std=1e-3)
        nn.init.zeros_(self.coord_out.bias)
        if self.input_mode == 'heatmap':
            gh, gw = (s // self.patch_size for s in self.input_size)
            with torch.no_grad():
                for p in self.pos_embeds:
                    p[0, -self.num_input_tokens:] = sincos_2d(gh, gw, p.shape[-1])
        # s = softplus(bias_s) = init_camera_scale, t = 0 at initialisation, whatever the features
        nn.init.zeros_(self.camera_out.weight)
        with torch.no_grad():
            self.camera_out.bias.copy_(torch.tensor(
                [math.log(math.expm1(self.init_camera_scale)), 0.0, 0.0]))

    def load_upsampling(self, path: Union[str, os.PathLike]) -> None:
        """Set the up-sampling layers to the barycentric U matrices of a mesh-sampling file.

        The file's levels (full mesh first, e.g. [6890, 1723, 431]) must start with this head's levels
        reversed; layer i (``num_vertices[i] → num_vertices[i+1]``) gets U of shape
        (num_vertices[i+1], num_vertices[i]) and bias 0.
        """
        from ...body_models.mesh_sampler import load_mesh_sampling
        sampling = load_mesh_sampling(os.fspath(path))
        file_levels = [int(v) for v in sampling['num_vertices']]
        ours = list(reversed(self.num_vertices))
        if file_levels[:len(ours)] != ours:
            raise ValueError(f'{os.fspath(path)}: mesh levels {file_levels} (full first) do not match '
                             f'MPTHead num_vertices {list(self.num_vertices)} (coarse first)')
        nl = len(self.num_vertices)
        with torch.no_grad():
            for i, layer in enumerate(self.upsampling):
                u = sampling['U'][nl - 2 - i].toarray()          # (V_{i+1}, V_i)
                layer.weight.copy_(torch.as_tensor(u, dtype=layer.weight.dtype))
                layer.bias.zero_()
        if self.smooth_vertex_queries:
            faces = sampling.get('F')
            if faces is None or len(faces) < nl:
                raise ValueError(f'{os.fspath(path)}: no faces of the coarse mesh (F) for '
                                 'smooth_vertex_queries')
            self.smooth_queries_over(np.asarray(faces[nl - 1]), self.smooth_vertex_queries)

    @torch.no_grad()
    def smooth_queries_over(self, faces: np.ndarray, steps: int) -> None:
        """Average the vertex query codes (1, V_c, d0) ``steps`` times over the neighbours of the coarse
        mesh with ``faces`` (F, 3) (each vertex with itself), then standardise each channel again."""
        n = self.num_vertices[0]
        f = torch.as_tensor(np.asarray(faces, np.int64))
        if f.ndim != 2 or f.shape[1] != 3 or int(f.min()) < 0 or int(f.max()) >= n:
            raise ValueError(f'MPTHead: coarse faces must be (F, 3) indices < {n}, got {tuple(f.shape)}')
        edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        adj = torch.eye(n)
        adj[edges[:, 0], edges[:, 1]] = 1.0
        adj[edges[:, 1], edges[:, 0]] = 1.0
        adj /= adj.sum(1, keepdim=True)
        q = self.vertex_queries[0].float()
        for _ in range(steps):
            q = adj @ q
        q = (q - q.mean(0)) / q.std(0).clamp_min(1e-6)
        self.vertex_queries[0] = q.to(self.vertex_queries.dtype)

    def init_weights(self) -> None:
        """mmengine calls this before training; keep our initialisation unless init_cfg is given."""
        if self.init_cfg is not None:
            super().init_weights()

    # ------------------------------------------------------------------ tokens
    @staticmethod
    def _visible_coords(x: Tensor) -> Tensor:
        """(B, K, 3) coords → (B, K, 3) with (x, y) zeroed where invisible (masked / behind the camera:
        their coordinates are meaningless) and the visibility as 0 / 1."""
        vis = (x[..., 2:] > 0).to(x.dtype)
        return torch.cat([x[..., :2] * vis, vis], dim=-1)

    def global_feature(self, x: Tensor) -> Tensor:
        """(B, K, H, W) maps or (B, K, 3) coords → (B, d0) global feature added to every query."""
        if self.input_mode == 'coords':
            flat = self._visible_coords(x).flatten(1)
        else:
            flat = F.adaptive_avg_pool2d(x, self.global_pool).flatten(1)
        return self.global_embed(flat)

    def embed_inputs(self, x: Tensor) -> Tensor:
        """(B, K, H, W) maps or (B, K, 3) coords → (B, N, d0) input tokens (no position yet)."""
        if self.input_mode == 'coords':
            if x.dim() != 3 or tuple(x.shape[1:]) != (self.in_channels, 3):
                raise ValueError(f'MPTHead: coords input must be (B, {self.in_channels}, 3), got '
                                 f'{tuple(x.shape)}')
            return self.input_embed(self._visible_coords(x))
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, *self.input_size):
            raise ValueError(f'MPTHead: pose maps must be (B, {self.in_channels}, {self.input_size[0]}, '
                             f'{self.input_size[1]}), got {tuple(x.shape)}')
        b, k, h, w = x.shape
        p = self.patch_size
        # (B, K, H/p, p, W/p, p) → (B, H/p·W/p, p·p·K), patches in row-major order
        patches = x.reshape(b, k, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        patches = patches.reshape(b, (h // p) * (w // p), p * p * k)
        return self.input_embed(patches)

    def build_queries(self, batch: int, device: torch.device) -> Tensor:
        """(B, 1 + J + V_c, d0): camera token, joint and vertex queries (MVM-masked in training)."""
        queries = torch.cat([self.joint_queries, self.vertex_queries], dim=1).expand(batch, -1, -1)
        if self.training and self.mvm_ratio > 0:
            mask = torch.rand(batch, self.num_queries, 1, device=device) < self.mvm_ratio
            queries = torch.where(mask, self.mask_token, queries)
        return torch.cat([self.camera_token.expand(batch, -1, -1), queries], dim=1)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """Pose maps (B, K, H, W) (or coords (B, K, 3)) → joints, multi-level vertices, camera.

        See the class docstring for the returned dict.
        """
        tokens = self.embed_inputs(x)
        b = tokens.shape[0]
        queries = self.build_queries(b, tokens.device).to(tokens.dtype)
        if self.global_embed is not None:
            queries = queries + self.global_feature(x).to(tokens.dtype)[:, None]
        hid = torch.cat([queries, tokens], dim=1)                      # (B, N_t, d0)
        for i, (reduce, block) in enumerate(zip(self.reductions, self.blocks)):
            hid = reduce(hid)
            if i < len(self.pos_embeds):
                hid = self.embed_drop(hid + self.pos_embeds[i])
            hid = block(hid)
        return self.read_out(hid)

    def read_out(self, hid: Tensor) -> Dict[str, Tensor]:
        """Last-block tokens (B, N_t, d_last) → output dict, computed in float32 (autocast off)."""
        with torch.autocast(device_type=hid.device.type, enabled=False):
            hid = self.final_norm(hid.float())
            coords = self.coord_out(hid[:, 1:1 + self.num_queries]) + self.query_offsets  # (B, J+V_c, 3)
            cam = self.camera_out(hid[:, 0])                               # (B, 3)
            out = {'joints_3d': coords[:, :self.num_joints],
                   'camera': torch.cat([F.softplus(cam[:, :1]), cam[:, 1:]], dim=1)}
            verts = coords[:, self.num_joints:]
            out[self.level_names[0]] = verts
            for name, up in zip(self.level_names[1:], self.upsampling):
                verts = up(verts.transpose(1, 2)).transpose(1, 2)          # linear over the vertices
                out[name] = verts
        return out

    # ------------------------------------------------------------------ cost model
    def flops_per_sample(self) -> Tuple[int, Dict[str, int]]:
        """Analytic forward FLOPs per sample (2 × multiply-adds of every matmul), by part.

        Counts the input MLP, the global-feature MLP, per layer the QKV / output projections (4·N·d²),
        attention scores and weighted values (2·N²·d), the MLP (2·N·d·d_mlp), the reductions between
        blocks, the coordinate / camera read-outs and the up-sampling layers. Element-wise work (norms, GELU, softmax, adds) is
        not counted. A training step is ≈ 3 × this (backward ≈ 2 × forward).
        """
        n = self.num_tokens
        parts: Dict[str, int] = {}
        first = self.input_embed[0]
        parts['input_mlp'] = 2 * self.num_input_tokens * (first.in_features * first.out_features +
                                                          first.out_features ** 2)
        if self.global_embed is not None:
            g = self.global_embed[1]
            parts['global_mlp'] = 2 * (g.in_features * g.out_features + g.out_features ** 2)
        attn_proj = attn_mix = mlp = red = 0
        for i, block in enumerate(self.blocks):
            d = self.hidden_dims[i]
            for layer in block:
                attn_proj += 2 * 4 * n * d * d
                attn_mix += 2 * 2 * n * n * d
                mlp += 2 * 2 * n * d * layer.mlp[0].out_features
            if i > 0:
                red += 2 * n * self.hidden_dims[i - 1] * d
        parts['attention_proj'] = attn_proj
        parts['attention_scores_values'] = attn_mix
        parts['mlp'] = mlp
        parts['reduction'] = red
        parts['outputs'] = 2 * (self.num_queries + 1) * self.hidden_dims[-1] * 3
        parts['upsampling'] = 2 * 3 * sum(a * b for a, b in zip(self.num_vertices[:-1],
                                                                 self.num_vertices[1:]))
        return sum(parts.values()), parts
