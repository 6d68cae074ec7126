"""ShortEpochLinearLR: mmengine's LinearLR whose epoch → iteration conversion never gives an empty phase.

The paper's schedule is "linear warm-up over the first 10 % of the iterations, then linear decay"
(Appendix E), written in epochs (``end=0.1 * max_epochs``) and converted to iterations by mmengine with
``int(epochs * iters_per_epoch)``. With few iterations (a short run, a small dataset, many GPUs) the
warm-up end truncates to 0 and mmengine refuses the scheduler ("end should be larger than begin"); a
1-iteration warm-up is no better: LinearLR is chained (each step multiplies the current value), so one
step never leaves ``start_factor`` and the whole run trains at 1e-3 of the lr. Here a boundary > 0 maps
to at least iteration 2 and a phase spans at least one iteration; with enough iterations the result
equals LinearLR's (rounding to the nearest iteration instead of truncating).
"""
from mmengine.optim.scheduler import LinearLR
from mmpose.registry import PARAM_SCHEDULERS

INF = int(1e9)


def epochs_to_iters(epochs: float, epoch_length: int) -> int:
    """0 stays 0; any positive boundary is at least iteration 2 (see the module docstring)."""
    if epochs <= 0:
        return 0
    return max(2, int(round(epochs * epoch_length)))


@PARAM_SCHEDULERS.register_module()
class ShortEpochLinearLR(LinearLR):
    """:class:`mmengine.optim.LinearLR` with a short-run-safe ``convert_to_iter_based``."""

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, by_epoch=True, epoch_length=None,
                              **kwargs):
        if not by_epoch or not epoch_length or epoch_length <= 0:
            raise ValueError('ShortEpochLinearLR: convert_to_iter_based needs by_epoch=True and a '
                             f'positive epoch length, got by_epoch={by_epoch}, '
                             f'epoch_length={epoch_length}')
        begin_it = epochs_to_iters(begin, epoch_length)
        end_it = end if end >= INF else max(epochs_to_iters(end, epoch_length), begin_it + 1)
        return cls(*args, begin=begin_it, end=end_it, by_epoch=False, **kwargs)
