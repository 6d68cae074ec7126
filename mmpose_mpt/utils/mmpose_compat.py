"""Make ``mmpose.visualization`` (and so mmpose's registries) importable without torchvision.

mmpose 1.3's registries list ``mmpose.visualization`` as the location of VISUALIZERS / VISBACKENDS, so a
runner with ``default_scope='mmpose'`` imports it, and ``mmpose/visualization/simcc_vis.py`` does
``from torchvision.transforms import ToPILImage`` at module load. No CPU build of torchvision exists
for this project's machines (and a CUDA build with a CPU torch raises at import). Only SimCC heatmap
visualisation uses it, which MPT never does, so when torchvision cannot be imported we pre-register a
stand-in for that one mmpose module whose ``SimCCVisualizer`` explains the situation if ever used.
torchvision itself is never faked.
"""
import importlib.util
import sys
import types


class _SimCCVisualizerUnavailable:
    """Stand-in for ``mmpose.visualization.simcc_vis.SimCCVisualizer`` (needs torchvision)."""

    def __init__(self, *args, **kwargs):
        raise ImportError('mmpose\'s SimCCVisualizer needs torchvision, which is not installed; '
                          'mmpose-mpt does not use it')


def _torchvision_importable() -> bool:
    # Not installed (this project's machines): decide without importing anything.
    if importlib.util.find_spec('torchvision') is None:
        return False
    try:
        import torchvision.transforms  # noqa: F401
        return True
    except Exception:  # noqa: BLE001  RuntimeError / OSError from a build that does not match torch
        # a failed import leaves half-initialised torchvision modules behind; drop them so nothing
        # later mistakes them for a working torchvision
        for mod in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
            del sys.modules[mod]
        return False


def ensure_mmpose_visualization_importable() -> None:
    """Idempotent; a no-op when torchvision works or mmpose.visualization is already imported."""
    name = 'mmpose.visualization.simcc_vis'
    if name in sys.modules or 'mmpose.visualization' in sys.modules or _torchvision_importable():
        return
    stub = types.ModuleType(name)
    stub.__doc__ = __doc__
    stub.SimCCVisualizer = _SimCCVisualizerUnavailable
    sys.modules[name] = stub
