from .mesh_estimator import MeshEstimator

__all__ = ['MeshEstimator']
