"""A non-finite loss stops training with the iteration and the batch's sources in the message."""
from types import SimpleNamespace

import pytest
import torch
from mmpose.structures import PoseDataSample

from mmpose_mpt.engine.hooks import NonFiniteLossHook


def _batch():
    samples = []
    for i in range(2):
        ds = PoseDataSample()
        ds.set_metainfo(dict(dataset_name='ToyTrain', seq_name=f'subj/walk_{i}_poses', frame_index=7 * i,
                             sample_idx=i))
        samples.append(ds)
    return dict(inputs=[torch.zeros(1)] * 2, data_samples=samples)


def test_finite_losses_pass():
    runner = SimpleNamespace(iter=4, epoch=0)
    NonFiniteLossHook().after_train_iter(runner, 0, _batch(), dict(loss=torch.tensor(1.0),
                                                                    loss_vertices=torch.tensor(0.5)))


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_loss_names_iteration_and_sources(bad):
    runner = SimpleNamespace(iter=41, epoch=2)
    with pytest.raises(FloatingPointError) as err:
        NonFiniteLossHook().after_train_iter(
            runner, 0, _batch(), dict(loss=torch.tensor(bad), loss_joints=torch.tensor(0.1)))
    msg = str(err.value)
    assert 'iteration 42' in msg and 'epoch 3' in msg
    assert 'subj/walk_1_poses' in msg and 'frame_index=7' in msg and 'ToyTrain' in msg
    assert 'loss_joints' not in msg  # only the offending terms are named
