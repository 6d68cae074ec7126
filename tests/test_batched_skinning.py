"""BatchedSkinning (the data engine's body-model forward) against the SMPL wrapper (smplx's LBS)."""
import numpy as np
import pytest
import torch

from mmpose_mpt.body_models import SMPL, make_toy_body_models
from mmpose_mpt.body_models.batched_skinning import BatchedSkinning


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    return make_toy_body_models(str(tmp_path_factory.mktemp('toy')))


def _rot(rng, n):
    from scipy.spatial.transform import Rotation
    return torch.from_numpy(Rotation.from_rotvec(rng.normal(0, 1.5, (n, 3))).as_matrix())


def _params(rng, B, dtype):
    betas = torch.from_numpy(rng.normal(0, 1.5, (B, 10))).to(dtype)
    pose = torch.from_numpy(rng.normal(0, 0.6, (B, 72))).to(dtype)
    return pose, betas


@pytest.mark.parametrize('dtype, atol', [(torch.float64, 1e-10), (torch.float32, 2e-6)])
def test_equals_smplx_forward(toy, dtype, atol):
    smpl = SMPL(toy['smpl_dir'], dtype=dtype)
    skin = BatchedSkinning(smpl, vertex_block=1000)       # several blocks, the last one partial
    rng = np.random.default_rng(0)
    pose, betas = _params(rng, 5, dtype)
    with torch.no_grad():
        ref = smpl(betas=betas, body_pose=pose[:, 3:], global_orient=pose[:, :3])
        verts, joints = skin(pose, betas)
    assert verts.shape == (6890, 3, 5) and verts.dtype == dtype and joints.shape == (5, 24, 3)
    torch.testing.assert_close(verts.permute(2, 0, 1), ref['vertices'], rtol=0, atol=atol)
    torch.testing.assert_close(joints, ref['joints'], rtol=0, atol=atol)


def test_root_rotation_and_root_relative(toy):
    smpl = SMPL(toy['smpl_dir'], dtype=torch.float64)
    skin = BatchedSkinning(smpl)
    rng = np.random.default_rng(1)
    pose, betas = _params(rng, 4, torch.float64)
    R = _rot(rng, 4)
    with torch.no_grad():
        ref = smpl(betas=betas, body_pose=pose[:, 3:], global_orient=pose[:, :3])
        verts, joints = skin(pose, betas, root_rotation=R, root_relative=True)
        verts_abs, joints_abs = skin(pose, betas, root_rotation=R)
    root = ref['joints'][:, :1]
    # the camera rotation folded into the root joint = rotating the posed mesh about the root
    expected = (ref['vertices'] - root) @ R.transpose(1, 2)
    torch.testing.assert_close(verts.permute(2, 0, 1), expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(joints, (ref['joints'] - root) @ R.transpose(1, 2), rtol=0, atol=1e-10)
    torch.testing.assert_close(verts_abs.permute(2, 0, 1), expected + root, rtol=0, atol=1e-10)
    torch.testing.assert_close(joints_abs[:, 0], root[:, 0], rtol=0, atol=1e-12)


def test_block_size_does_not_change_the_result(toy):
    smpl = SMPL(toy['smpl_dir'])
    rng = np.random.default_rng(2)
    pose, betas = _params(rng, 3, torch.float32)
    outs = [BatchedSkinning(smpl, vertex_block=n)(pose, betas)[0] for n in (1, 97, 512, 10**6)]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=0, atol=1e-6)


def test_short_pose_and_betas_are_padded(toy):
    smpl = SMPL(toy['smpl_dir'], dtype=torch.float64)
    skin = BatchedSkinning(smpl)
    rng = np.random.default_rng(3)
    pose, betas = _params(rng, 2, torch.float64)
    pose[:, 66:] = 0          # the last two joints at identity, given or left out
    betas[:, 6:] = 0
    full = skin(pose, betas)[0]
    short = skin(pose[:, :66], betas[:, :6])[0]
    torch.testing.assert_close(short, full, rtol=0, atol=0)
    with pytest.raises(ValueError, match='joint rotations'):
        skin(torch.zeros(2, 75, dtype=torch.float64), betas)
    with pytest.raises(ValueError, match='betas'):
        skin(pose, torch.zeros(2, 11, dtype=torch.float64))


def test_buffers_follow_the_module_and_are_not_checkpointed(toy):
    skin = BatchedSkinning(SMPL(toy['smpl_dir']))
    assert len(skin.state_dict()) == 0           # derived from the licensed model file
    skin = skin.double()              # dtype casts do not reach the buffers: built float32, stays so
    assert skin.blend_dirs.dtype == torch.float32 and skin.parents.dtype == torch.int64
    skin64 = BatchedSkinning(SMPL(toy['smpl_dir'], dtype=torch.float64))
    verts, _ = skin64(torch.zeros(1, 72), torch.zeros(1, 10))
    assert verts.dtype == torch.float64
    skin64.to('meta')
    assert skin64.blend_dirs.device.type == 'meta' and skin64.blend_dirs.dtype == torch.float64
    assert skin64.level1_joints.device.type == 'meta'


def test_half_casts_are_undone_and_gradients_are_refused(toy):
    skin = BatchedSkinning(SMPL(toy['smpl_dir']))
    ref = skin(torch.zeros(2, 72), torch.zeros(2, 10))[0]
    for cast in (torch.float16, torch.bfloat16):
        half = BatchedSkinning(SMPL(toy['smpl_dir'])).to(cast)
        assert half.blend_dirs.dtype == torch.float32
        torch.testing.assert_close(half(torch.zeros(2, 72), torch.zeros(2, 10))[0], ref, rtol=0, atol=0)
    pose = torch.zeros(2, 72, requires_grad=True)
    with pytest.raises(ValueError, match='no gradients'):
        skin(pose, torch.zeros(2, 10))
    with torch.no_grad():
        skin(pose, torch.zeros(2, 10))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu(toy):
    smpl = SMPL(toy['smpl_dir'])
    skin = BatchedSkinning(smpl)
    rng = np.random.default_rng(4)
    pose, betas = _params(rng, 16, torch.float32)
    R = _rot(rng, 16).float()
    cpu = skin(pose, betas, R, root_relative=True)[0]
    gpu = skin.cuda()(pose.cuda(), betas.cuda(), R.cuda(), root_relative=True)[0]
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-5)
