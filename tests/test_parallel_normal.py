"""normal_parallel_: Gaussian noise for large CPU tensors on all intra-op threads."""
import os

import pytest
import torch

from mmpose_mpt.utils import normal_parallel_
from mmpose_mpt.utils.parallel_normal import MIN_PARALLEL_NUMEL


@pytest.mark.parametrize('threads', [2, 3])
def test_statistics_reproducibility_and_independent_chunks(threads):
    x = torch.empty(4, MIN_PARALLEL_NUMEL)                   # large enough for the parallel path
    torch.manual_seed(0)
    normal_parallel_(x, threads)
    assert abs(float(x.mean())) < 5e-3 and abs(float(x.std()) - 1) < 5e-3
    chunks = x.view(-1).chunk(threads)
    for c in chunks:                                          # every chunk is N(0, 1) ...
        assert abs(float(c.mean())) < 1e-2 and abs(float(c.std()) - 1) < 1e-2
    n = min(len(c) for c in chunks)                           # ... and the chunks are not one stream
    assert abs(float(torch.corrcoef(torch.stack([chunks[0][:n], chunks[1][:n]]))[0, 1])) < 5e-3
    y = torch.empty_like(x)
    torch.manual_seed(0)
    normal_parallel_(y, threads)
    torch.testing.assert_close(x, y, rtol=0, atol=0)          # same seed, same thread count
    normal_parallel_(y, threads)
    assert not torch.equal(x, y)                              # the default generator advanced


def test_small_non_contiguous_and_single_thread_fall_back_to_normal_():
    small = torch.zeros(10)
    torch.manual_seed(1)
    normal_parallel_(small, 2)
    torch.manual_seed(1)
    torch.testing.assert_close(small, torch.zeros(10).normal_(), rtol=0, atol=0)
    big = torch.zeros(2 * MIN_PARALLEL_NUMEL, 2).t()          # non-contiguous view, filled in place
    normal_parallel_(big, 2)
    assert float(big.std()) == pytest.approx(1.0, abs=1e-2)


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')
def test_forked_child_gets_its_own_threads():
    x = torch.empty(MIN_PARALLEL_NUMEL * 2)
    normal_parallel_(x, 2)                                    # parent's pool exists now
    pid = os.fork()
    if pid == 0:                                              # child: must not wait on dead threads
        import signal
        signal.alarm(20)                                      # a hang ends the child with SIGALRM
        try:
            normal_parallel_(torch.empty(MIN_PARALLEL_NUMEL * 2), 2)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
