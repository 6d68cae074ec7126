"""Headless mesh rendering and visualisers.

``render_meshes`` / ``render_side_view`` / ``available_backends`` (several people in one perspective
camera: pyrender EGL / OSMesa, numpy painter fallback), the single-mesh painter ``render_mesh``, and
``MeshVisualizer`` (mmpose's ``VISUALIZERS``). pyrender itself is only imported when a GL backend renders.
"""
from .mesh_renderer import (COCO17_SKELETON, draw_keypoints, look_at_camera, project_orthographic,
                            render_mesh)
from .mesh_visualizer import MeshVisualizer, crop_camera_vertices
from .scene_renderer import SceneRenderError, available_backends, render_meshes, render_side_view

__all__ = ['COCO17_SKELETON', 'draw_keypoints', 'look_at_camera', 'project_orthographic', 'render_mesh',
           'render_meshes', 'render_side_view', 'available_backends', 'SceneRenderError', 'MeshVisualizer',
           'crop_camera_vertices']
