"""HigherHRNet's higher-resolution head (mmpose 0.x ``AEHigherResolutionHead``) as a pose-map neck.

mmpose 1.x has no HigherHRNet (its README lists it as unsupported), but MPT's main 2D pose network is
HigherHRNet-w48 (Sec. 3.2, 3.3). This is a port of open-mmlab/mmpose@0.x
``mmpose/models/heads/ae_higher_resolution_head.py`` with the same constructor arguments, the same
module tree (hence the same state-dict names and shapes: a released 0.x checkpoint's
``keypoint_head.*`` entries load unchanged) and the same initialisation. What MPT removes is left out
(paper Sec. 3.2: "we remove those post-processing operations"): no losses, no associative-embedding
tags, grouping, NMS or flip test. The output is the 17 COCO pose maps that replace MoCap heatmaps.

Stage outputs for a (B, 3, H, W) image and ``with_ae_loss=[True, False]`` (w48 config)::

    HRNet 1/4 features  x  (B, 48, H/4, W/4)
    y0 = final_layers[0](x)                          (B, 34, H/4, W/4)  17 heatmaps + 17 tag maps
    x  = deconv_layers[0](cat([x, y0], 1))            (B, 48, H/2, W/2)
    y1 = final_layers[1](x)                          (B, 17, H/2, W/2)  17 heatmaps
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule, constant_init, normal_init
from mmpose.models.backbones.resnet import BasicBlock
from mmpose.registry import MODELS
from torch import Tensor, nn

# ConvTranspose2d kernel → (padding, output_padding) giving an exact 2x up-sampling (0.x _get_deconv_cfg)
_DECONV_CFG = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
POSE_MAP_MODES = ('final', 'average')


@MODELS.register_module()
class AEHigherResolutionNeck(BaseModule):
    """HigherHRNet's higher-resolution head without post-processing; returns COCO-order pose maps.

    Args:
        in_channels: channels of the backbone's 1/4-resolution output (48 for HRNet-w48).
        num_joints: heatmaps per stage (17, COCO order: nose, l/r eye, l/r ear, l/r shoulder,
            l/r elbow, l/r wrist, l/r hip, l/r knee, l/r ankle).
        tag_per_joint: tag maps per stage with tags: ``num_joints`` if True, else 1 (kept so
            checkpoints load: stage 0 of the released model predicts tags, which are discarded).
        extra: ``dict(final_conv_kernel=1 or 3)``; the kernel of the final 1x1 / 3x3 convolutions.
        num_deconv_layers: number of 2x up-sampling stages after the first output (0 = none).
        num_deconv_filters: output channels of each up-sampling stage.
        num_deconv_kernels: ConvTranspose2d kernel of each stage (4, 3 or 2).
        num_basic_blocks: ResNet ``BasicBlock`` refinements after each up-sampling.
        cat_output: per up-sampling stage, concatenate the previous stage's output to its input.
        with_ae_loss: per output stage, whether it carries tag maps (decides its channel count; the
            tags are not used, but the released weights have them).
        pose_maps: which maps :meth:`forward` returns: ``'final'`` = the last stage's heatmaps
            (y1, 1/2 input resolution for the w48 config); ``'average'`` = the mean of every stage's
            first ``num_joints`` channels, bilinearly resized (``align_corners=False``) to the last
            stage's size, i.e. mmpose 0.x's test-time ``aggregate_stage='average'`` before flipping.
        init_cfg: optional mmengine init config (e.g. ``Pretrained``); None = the 0.x initialisation.
    """

    def __init__(self,
                 in_channels: int,
                 num_joints: int,
                 tag_per_joint: bool = True,
                 extra: Optional[dict] = None,
                 num_deconv_layers: int = 1,
                 num_deconv_filters: Sequence[int] = (32, ),
                 num_deconv_kernels: Sequence[int] = (4, ),
                 num_basic_blocks: int = 4,
                 cat_output: Optional[Sequence[bool]] = None,
                 with_ae_loss: Optional[Sequence[bool]] = None,
                 pose_maps: str = 'final',
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if pose_maps not in POSE_MAP_MODES:
            raise ValueError(f'AEHigherResolutionNeck: pose_maps must be one of {POSE_MAP_MODES}, '
                             f'got {pose_maps!r}')
        if num_deconv_layers < 0:
            raise ValueError(f'AEHigherResolutionNeck: num_deconv_layers must be >= 0, got '
                             f'{num_deconv_layers}')
        cat_output = [False] * num_deconv_layers if cat_output is None else list(cat_output)
        with_ae_loss = [False] * (num_deconv_layers + 1) if with_ae_loss is None else list(with_ae_loss)
        lengths = {'num_deconv_filters': (len(num_deconv_filters), num_deconv_layers),
                   'num_deconv_kernels': (len(num_deconv_kernels), num_deconv_layers),
                   'cat_output': (len(cat_output), num_deconv_layers),
                   'with_ae_loss': (len(with_ae_loss), num_deconv_layers + 1)}
        for name, (got, need) in lengths.items():
            if got < need:
                raise ValueError(f'AEHigherResolutionNeck: {name} has {got} entries, '
                                 f'num_deconv_layers={num_deconv_layers} needs {need}')
        kernel = (extra or {}).get('final_conv_kernel', 1)
        if kernel not in (1, 3):
            raise ValueError(f'AEHigherResolutionNeck: extra.final_conv_kernel must be 1 or 3, got {kernel}')
        bad = [k for k in num_deconv_kernels[:num_deconv_layers] if k not in _DECONV_CFG]
        if bad:
            raise ValueError(f'AEHigherResolutionNeck: deconv kernel {bad[0]} not supported '
                             f'(use 4, 3 or 2)')

        self.num_joints = num_joints
        self.num_deconvs = num_deconv_layers
        self.cat_output = cat_output
        self.pose_maps = pose_maps
        dim_tag = num_joints if tag_per_joint else 1
        # stage i predicts heatmaps (+ tags iff with_ae_loss[i]); stage i's output feeds stage i+1
        stage_channels = [num_joints + (dim_tag if with_ae_loss[i] else 0)
                          for i in range(num_deconv_layers + 1)]

        padding = 1 if kernel == 3 else 0
        final_in = [in_channels] + list(num_deconv_filters[:num_deconv_layers])
        self.final_layers = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=kernel, stride=1, padding=padding)
            for c_in, c_out in zip(final_in, stage_channels))

        deconv_layers = []
        c_in = in_channels
        for i in range(num_deconv_layers):
            if cat_output[i]:
                c_in += stage_channels[i]
            planes = num_deconv_filters[i]
            pad, out_pad = _DECONV_CFG[num_deconv_kernels[i]]
            # the nesting (Sequential(Sequential(deconv, bn, relu), Sequential(block), ...)) is the 0.x
            # one: it fixes the state-dict names deconv_layers.i.0.{0,1}.* / deconv_layers.i.j.0.*
            layers = [nn.Sequential(
                nn.ConvTranspose2d(c_in, planes, kernel_size=num_deconv_kernels[i], stride=2,
                                   padding=pad, output_padding=out_pad, bias=False),
                nn.BatchNorm2d(planes, momentum=0.1),
                nn.ReLU(inplace=True))]
            layers += [nn.Sequential(BasicBlock(planes, planes)) for _ in range(num_basic_blocks)]
            deconv_layers.append(nn.Sequential(*layers))
            c_in = planes
        self.deconv_layers = nn.ModuleList(deconv_layers)

    def init_weights(self) -> None:
        """mmpose 0.x initialisation (deconvs N(0, 0.001), BN weight 1 / bias 0, final convs N(0, 0.001)
        with bias 0; the BasicBlock convolutions keep PyTorch's default), unless ``init_cfg`` is set."""
        if self.init_cfg:
            super().init_weights()
            return
        for m in self.deconv_layers.modules():
            if isinstance(m, nn.ConvTranspose2d):
                normal_init(m, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                constant_init(m, 1)
        for m in self.final_layers.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, std=0.001, bias=0)
        self._is_init = True

    def forward_stages(self, x: Union[Tensor, Sequence[Tensor]]) -> List[Tensor]:
        """All stage outputs, as mmpose 0.x's head returns them: [(B, C_0, h, w), (B, C_1, 2h, 2w), ...].

        ``x``: the backbone's 1/4-resolution features (B, in_channels, h, w), or a tuple / list whose
        first element they are (mmpose 1.x ``HRNet`` returns a tuple, 0.x a list).
        """
        if isinstance(x, (list, tuple)):
            if not x:
                raise ValueError('AEHigherResolutionNeck: got an empty feature tuple')
            x = x[0]
        outputs = []
        y = self.final_layers[0](x)
        outputs.append(y)
        for i in range(self.num_deconvs):
            if self.cat_output[i]:
                x = torch.cat((x, y), 1)
            x = self.deconv_layers[i](x)
            y = self.final_layers[i + 1](x)
            outputs.append(y)
        return outputs

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Backbone features → pose maps (B, num_joints, h_last, w_last), COCO order.

        For HRNet-w48 and a 224 x 224 crop: (B, 48, 56, 56) → (B, 17, 112, 112).
        """
        outputs = self.forward_stages(x)
        final = outputs[-1][:, :self.num_joints]
        if self.pose_maps == 'final' or len(outputs) == 1:
            return final
        size = final.shape[-2:]
        maps = [final]
        for y in outputs[:-1]:
            y = y[:, :self.num_joints]  # heatmaps first, tags after them (0.x split_ae_outputs)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode='bilinear', align_corners=False)
            maps.append(y)
        return torch.stack(maps, 0).mean(0)
