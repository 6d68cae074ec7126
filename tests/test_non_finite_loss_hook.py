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


def _big_batch(n=32, poisoned=(5, 29)):
    import numpy as np
    from mmengine.structures import InstanceData
    samples, inputs = [], []
    for i in range(n):
        ds = PoseDataSample()
        ds.set_metainfo(dict(dataset_name='ToyTrain', seq_name=f'subj/seq_{i}_poses', frame_index=i,
                             sample_idx=i))
        gt = InstanceData()
        pose = np.zeros((1, 72), np.float32)
        if i in poisoned:
            pose[0, 7] = np.nan
        gt.smpl_pose = pose
        ds.gt_instances = gt
        samples.append(ds)
        inputs.append(torch.zeros(17, 3))
    return dict(inputs=inputs, data_samples=samples)


def test_every_sample_is_named_non_finite_first(tmp_path):
    """With 32 samples the poisoned ones (5 and 29) lead the message and every sample is in the file;
    the old message showed the first 8 only (sample 29 was hidden)."""
    import json
    runner = SimpleNamespace(iter=9, epoch=0, work_dir=str(tmp_path), rank=0, world_size=1)
    with pytest.raises(FloatingPointError) as err:
        NonFiniteLossHook().after_train_iter(runner, 0, _big_batch(), dict(loss=torch.tensor(float('nan'))))
    msg = str(err.value)
    lines = msg.splitlines()
    assert 'Batch of 32 samples, 2 with non-finite' in lines[0]
    assert 'seq_5_poses' in lines[1] and 'seq_29_poses' in lines[2] and lines[1].lstrip().startswith('*')
    assert 'non-finite: gt_instances.smpl_pose' in lines[1]
    assert all(f'seq_{i}_poses' in msg for i in range(32))
    path = tmp_path / 'non_finite_loss_iter10.json'
    assert str(path) in lines[0]
    rec = json.load(open(path))
    assert [s['index'] for s in rec['samples']] == [5, 29] + [i for i in range(32) if i not in (5, 29)]
    assert rec['samples'][0]['source']['seq_name'] == 'subj/seq_5_poses'


@pytest.mark.parametrize('bad', [torch.tensor([float('nan'), 1.0]), __import__('numpy').float32('nan'),
                                 torch.tensor(float('inf'), dtype=torch.float16)])
def test_non_scalar_and_numpy_losses(bad):
    with pytest.raises(FloatingPointError, match='loss_x'):
        NonFiniteLossHook().after_train_iter(SimpleNamespace(iter=0, epoch=0), 0, _batch(),
                                             dict(loss=torch.tensor(1.0), loss_x=bad))
