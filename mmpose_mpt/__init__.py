"""mmpose-mpt: Mesh Pre-Training (MPT, WACV 2024) as an OpenMMLab / mmpose 1.x plugin.

``import mmpose_mpt`` registers every component into mmpose's registries, so configs work with
``default_scope='mmpose'`` and ``custom_imports=dict(imports=['mmpose_mpt'])``.
"""
from .version import __version__
from .utils.mmpose_compat import ensure_mmpose_visualization_importable

# Before anything reaches mmpose.visualization (mmpose's registries import it lazily).
ensure_mmpose_visualization_importable()

# Importing the sub-packages registers their components (DATASETS, TRANSFORMS, MODELS, METRICS).
from . import body_models, cameras, datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__all__ = ['__version__']
