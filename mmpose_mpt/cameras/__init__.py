from .weak_perspective import weak_perspective_project

__all__ = ['weak_perspective_project']
