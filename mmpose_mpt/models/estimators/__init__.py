from .hand_mesh_estimator import HandMeshEstimator
from .mesh_estimator import MeshEstimator

__all__ = ['HandMeshEstimator', 'MeshEstimator']
