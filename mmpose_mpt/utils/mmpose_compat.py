"""Make ``mmpose.visualization`` (and so mmpose's registries) importable without torchvision.

mmpose 1.3's registries list ``mmpose.visualization`` as the location of VISUALIZERS / VISBACKENDS, so a
runner with ``default_scope='mmpose'`` imports it, and ``mmpose/visualization/simcc_vis.py`` does
``from torchvision.transforms import ToPILImage`` at module load. No CPU build of torchvision exists
for this project's machines, and a build that does not match torch (a CUDA torchvision next to a CPU
torch) fails — or crashes — at import. Only SimCC heatmap visualisation uses it, which MPT never does,
so mmpose-mpt pre-registers a stand-in for that one mmpose module, whose ``SimCCVisualizer`` explains
the situation if ever used. torchvision is never imported (not even to probe it) nor faked; to use
mmpose's real SimCCVisualizer, import ``mmpose.visualization`` before ``mmpose_mpt``.
"""
import sys
import types


class _SimCCVisualizerUnavailable:
    """Stand-in for ``mmpose.visualization.simcc_vis.SimCCVisualizer`` (needs torchvision)."""

    def __init__(self, *args, **kwargs):
        raise ImportError('mmpose\'s SimCCVisualizer needs torchvision, which mmpose-mpt does not import '
                          '(no CPU build exists; a mismatched build breaks at import). To use it with a '
                          'working torchvision, import mmpose.visualization before mmpose_mpt.')


def ensure_mmpose_visualization_importable() -> None:
    """Idempotent; a no-op when mmpose.visualization (or its SimCC module) is already imported."""
    name = 'mmpose.visualization.simcc_vis'
    if name in sys.modules or 'mmpose.visualization' in sys.modules:
        return
    stub = types.ModuleType(name)
    stub.__doc__ = __doc__
    stub.SimCCVisualizer = _SimCCVisualizerUnavailable
    sys.modules[name] = stub
