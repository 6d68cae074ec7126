from .mesh_renderer import (COCO17_SKELETON, draw_keypoints, look_at_camera, project_orthographic,
                            render_mesh)

__all__ = ['COCO17_SKELETON', 'draw_keypoints', 'look_at_camera', 'project_orthographic', 'render_mesh']
