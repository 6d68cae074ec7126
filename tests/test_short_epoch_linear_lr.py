"""ShortEpochLinearLR: the paper's 10 % warm-up + linear decay survives runs with few iterations."""
import pytest
import torch
from mmengine.optim.scheduler import LinearLR

from mmpose_mpt.engine.schedulers import ShortEpochLinearLR


def schedule(epochs, epoch_length, cls=ShortEpochLinearLR):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    warm = cls.build_iter_from_epoch(opt, start_factor=1e-3, end_factor=1.0, begin=0, end=0.1 * epochs,
                                     epoch_length=epoch_length)
    decay = cls.build_iter_from_epoch(opt, start_factor=1.0, end_factor=0.0, begin=0.1 * epochs,
                                      end=epochs, epoch_length=epoch_length)
    lrs = []
    for _ in range(epochs * epoch_length):
        lrs.append(opt.param_groups[0]['lr'])
        warm.step()
        decay.step()
    return (warm.begin, warm.end, decay.begin, decay.end), lrs


def test_few_iterations_keep_a_warm_up_and_a_decay():
    # 1 epoch of 4 iterations: mmengine's LinearLR truncates the warm-up end to 0 and refuses it
    with pytest.raises(ValueError, match='end should be larger than begin'):
        schedule(1, 4, LinearLR)
    bounds, lrs = schedule(1, 4)
    assert bounds == (0, 2, 2, 4)
    # warm-up from 1e-3 to the full lr, then the linear decay (LinearLR reaches a phase's end factor
    # at its last iteration)
    assert lrs == pytest.approx([1e-3, 1.0, 1.0, 0.0])


def test_long_runs_equal_mmengine_linear_lr():
    ours, lrs = schedule(10, 1000)
    theirs, ref = schedule(10, 1000, LinearLR)
    assert ours == theirs == (0, 1000, 1000, 10000)
    assert lrs == pytest.approx(ref)


def test_registered_and_bad_conversion():
    from mmengine.registry import init_default_scope
    from mmpose.registry import PARAM_SCHEDULERS

    import mmpose_mpt  # noqa: F401
    init_default_scope('mmpose')
    assert PARAM_SCHEDULERS.get('ShortEpochLinearLR') is ShortEpochLinearLR
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match='epoch length'):
        ShortEpochLinearLR.build_iter_from_epoch(opt, begin=0, end=1, epoch_length=0)
