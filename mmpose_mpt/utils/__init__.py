from .cpu_allocator import keep_freed_memory
from .mmpose_compat import ensure_mmpose_visualization_importable
from .parallel_normal import normal_parallel_
from .recycled_buffer import RecycledBuffer
from .runtime import adapt_cfg_to_device, init_distributed_without_cuda

__all__ = ['RecycledBuffer', 'normal_parallel_', 'adapt_cfg_to_device', 'init_distributed_without_cuda',
           'ensure_mmpose_visualization_importable', 'keep_freed_memory']
