"""ConcatHeatmapHead: mmpose 1.x's HRNetV2 hand pose head (FeatureMapProcessor(concat=True) + HeatmapHead)
as one MeshEstimator neck, with the released checkpoint's ``head.*`` names.

mmpose's ``td-hm_hrnetv2-w18_8xb64-210e_{onehand10k,rhd2d,coco-wholebody-hand}-256x256`` configs put
``FeatureMapProcessor(concat=True)`` (no parameters: the 4 HRNet branches resized to the first one's
size, bilinear, ``align_corners=False``, concatenated: 18 + 36 + 72 + 144 = 270 channels) between the
backbone and ``HeatmapHead(in_channels=270, out_channels=21, deconv_out_channels=None,
conv_out_channels=(270,), conv_kernel_sizes=(1,))``. A MeshEstimator has one neck (the pose network's
head, see :func:`load_pose_net_checkpoint`, which maps a 1.x file's ``head.*`` onto it); this class is
that HeatmapHead with the concatenation in front, so its state dict is exactly the released head's.
It returns the 21 heatmaps (B, 21, 64, 64) for a 256 crop (1/4 resolution), no decoding.
"""
from typing import Sequence, Tuple, Union

from mmpose.models.heads import HeatmapHead
from mmpose.models.necks import FeatureMapProcessor
from mmpose.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class ConcatHeatmapHead(HeatmapHead):
    """``HeatmapHead`` reading the concatenation of all backbone branches (HRNetV2 style).

    Args: those of mmpose's ``HeatmapHead`` (``in_channels`` = the summed branch widths, 270 for w18).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.concat = FeatureMapProcessor(concat=True)

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Backbone branches (tuple of (B, C_i, h_i, w_i)) -> heatmaps (B, K, h_0, w_0)."""
        feats: Tuple[Tensor, ...] = (feats, ) if isinstance(feats, Tensor) else tuple(feats)
        return super().forward(self.concat(feats))
