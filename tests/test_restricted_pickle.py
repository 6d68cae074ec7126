"""The restricted unpickler runs nothing from a file and builds no array out of raw memory.

Each hostile payload is loaded by the real entry points (``SMPL(path)``, ``tools/convert_body_model.py``,
``tools/make_mesh_sampling.py``, the mesh sampler, the AMASS reader) in a subprocess, so a segfault
fails the test instead of killing pytest; a marker file shows whether code ran.
"""
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest

from mmpose_mpt.utils.restricted_pickle import (RestrictedPickleError, load_npz_restricted, restricted_loads,
                                                sparse_from_state, to_plain)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
try:  # numpy 2 moved the reconstructors to numpy._core
    from numpy._core import multiarray as _ma
    from numpy._core import numeric as _num
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _ma
    from numpy.core import numeric as _num


class _Reduce:
    """Pickles as ``func(*args)`` (with an optional BUILD state): the payloads below."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _payloads(marker: str) -> dict:
    """name -> object whose pickle attacks the loader (code execution or memory)."""
    obj_dtype = np.dtype('O')
    raw = b'\x41' * 16  # two "pointers" 0x4141...
    return {
        'os_system': _Reduce(os.system, (f'touch {marker}', )),
        'eval': _Reduce(eval, (f"open({marker!r}, 'w')", )),
        'exec_builtins': _Reduce(exec, (f"open({marker!r}, 'w')", )),
        'nested_reduce': _Reduce(getattr, (_Reduce(__import__, ('os', )), 'system')),
        'subprocess': _Reduce(subprocess.call, (['touch', marker], )),
        'ndarray_raw_object_buffer': _Reduce(np.ndarray, ((2, ), obj_dtype, raw)),
        'reconstruct_object_bytes': _Reduce(_ma._reconstruct, (np.ndarray, (0, ), b'b'),
                                            (1, (2, ), obj_dtype, False, raw)),
        'scalar_object': _Reduce(_ma.scalar, (obj_dtype, raw[:8])),
        'frombuffer_object': _Reduce(_num._frombuffer, (raw, obj_dtype, (2, ), 'C')),
        'reconstruct_short_data': _Reduce(_ma._reconstruct, (np.ndarray, (0, ), b'b'),
                                          (1, (1000, 1000), np.dtype('f8'), False, b'\0' * 8)),
        'bytes_bomb': _Reduce(bytes, (10**13, )),
        'bytearray_bomb': _Reduce(bytearray, (10**13, )),
        'range_list_bomb': _Reduce(list, (_Reduce(range, (10**13, )), )),
        'structured_dtype': _Reduce(_ma._reconstruct, (np.ndarray, (0, ), b'b'),
                                    (1, (1, ), np.dtype([('a', 'O')]), False, raw[:8])),
    }


def test_every_payload_is_refused_in_process(tmp_path):
    marker = str(tmp_path / 'pwned')
    for name, obj in _payloads(marker).items():
        data = pickle.dumps({'v_template': obj}, protocol=2)
        try:
            out = to_plain(restricted_loads(data))
        except (RestrictedPickleError, TypeError, ValueError) as e:
            assert 'Traceback' not in str(e)
        else:  # refused globals become inert stand-ins: never arrays, never called
            assert not isinstance(out['v_template'], np.ndarray) or out['v_template'].dtype != object, name
        assert not osp.exists(marker), name


def test_legit_arrays_round_trip():
    """What numpy itself pickles (protocols 0-5, C/F order, byte orders, str/bytes/bool/complex, object
    arrays of strings, numpy scalars) comes back identical."""
    values = [np.arange(12, dtype='<f8').reshape(3, 4), np.asfortranarray(np.arange(6.).reshape(2, 3)),
              np.arange(5, dtype='>i4'), np.array(['neutral', 'male']), np.array([b'ab', b'c']),
              np.array([True, False]), np.array([1 + 2j]), np.zeros((0, 3), np.float32),
              np.array('female'), np.array(['male'], dtype=object), np.float64(2.5), np.int32(-7),
              np.array(3.0), np.uint16(9)]
    for proto in range(0, 6):
        for v in values:
            back = to_plain(restricted_loads(pickle.dumps(v, protocol=proto)))
            assert type(back) is type(v), (proto, v)
            if isinstance(v, np.ndarray):
                assert back.dtype == v.dtype and back.shape == v.shape, (proto, v)
                np.testing.assert_array_equal(back, v)
                assert back.flags['F_CONTIGUOUS'] == v.flags['F_CONTIGUOUS'] or v.ndim < 2
            else:
                assert back == v


def test_sparse_stand_in_is_index_checked():
    import scipy.sparse as sp
    m = sp.csc_matrix(np.array([[0, 1.5, 0], [2, 0, 3]]))
    back = sparse_from_state(restricted_loads(pickle.dumps(m, protocol=2)))
    np.testing.assert_array_equal(back.toarray(), m.toarray())
    bad = sp.csc_matrix(m)
    bad.indices = bad.indices.copy()
    bad.indices[0] = 10**6  # scipy's kernels would write out of bounds
    with pytest.raises(RestrictedPickleError, match='indices outside'):
        sparse_from_state(restricted_loads(pickle.dumps(bad, protocol=2)))


# -------------------------------------------------------------------------- the real entry points
# One subprocess loads every hostile file through every entry point (a segfault kills it: the test
# fails, and the last line it printed names the case). Each case prints one JSON line.
_DRIVER = r"""
import contextlib, importlib.util, io, json, os.path as osp, sys, warnings
warnings.simplefilter('ignore')
sys.path.insert(0, {repo!r})

def tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join({repo!r}, 'tools', name + '.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

convert, sampling = tool('convert_body_model'), tool('make_mesh_sampling')
from mmpose_mpt.body_models import SMPL
from mmpose_mpt.body_models.mesh_sampler import MeshSampler
from mmpose_mpt.datasets.amass_index import read_amass_header

for line in sys.stdin:
    kind, path, out = line.split()
    print(json.dumps(dict(start=kind, path=path)), flush=True)
    err, res = io.StringIO(), {{}}
    try:
        with contextlib.redirect_stderr(err):
            if kind == 'smpl':
                SMPL(path)
            elif kind == 'convert':
                res['rc'] = convert.main([path, out])
            elif kind == 'make_mesh_sampling':
                res['rc'] = sampling.main([path, out, '--levels', '100'])
            elif kind == 'sampler':
                MeshSampler(path)
            elif kind == 'gender':
                read_amass_header(osp.dirname(path), osp.basename(path))
        res['loaded'] = res.get('rc', 0) == 0
    except Exception as e:
        res.update(loaded=False, error=type(e).__name__, message=str(e))
    res.update(kind=kind, path=path, stderr=err.getvalue())
    print(json.dumps(res), flush=True)
"""


def _drive(cases, tmp_path):
    """cases: [(kind, path)] -> {(kind, path): result}; fails on a crash (a signal)."""
    import json
    script = tmp_path / 'driver.py'
    script.write_text(_DRIVER.format(repo=REPO))
    stdin = ''.join(f'{k} {p} {tmp_path / "out.npz"}\n' for k, p in cases)
    proc = subprocess.run([sys.executable, str(script)], input=stdin, capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith('{')]
    assert proc.returncode == 0, (f'crashed (rc {proc.returncode}) on {lines[-1] if lines else "?"}: '
                                  f'{proc.stderr[-1500:]}')
    return {(r['kind'], r['path']): r for r in lines if 'kind' in r}


ENTRY_PAYLOADS = ('os_system', 'nested_reduce', 'ndarray_raw_object_buffer', 'reconstruct_object_bytes',
                  'scalar_object', 'frombuffer_object', 'bytes_bomb')


def test_entry_points_refuse_hostile_files(tmp_path):
    """SMPL(path), tools/convert_body_model.py, tools/make_mesh_sampling.py (body-model pickles whose
    v_template / f / shapedirs is the payload), MeshSampler on a METRO-layout file and the AMASS reader
    on a pickled gender: each refuses with one clear message naming the file; no code runs, no crash."""
    from mmpose_mpt.body_models import make_toy_body_models
    from mmpose_mpt.body_models.body_model_file import load_body_model_file
    make_toy_body_models(str(tmp_path / 'toy'))
    arrays = load_body_model_file(str(tmp_path / 'toy' / 'body_models' / 'smpl' / 'SMPL_NEUTRAL.pkl'))
    marker = str(tmp_path / 'pwned')
    cases = []
    for name in ENTRY_PAYLOADS:
        payload = _payloads(marker)[name]
        for key in ('v_template', 'f', 'shapedirs'):
            model = str(tmp_path / f'{name}_{key}.pkl')
            with open(model, 'wb') as fh:
                pickle.dump(dict(arrays, **{key: payload}), fh, protocol=2)
            cases += [('smpl', model), ('convert', model)]
            if key != 'shapedirs':
                cases.append(('make_mesh_sampling', model))
        metro = str(tmp_path / f'{name}_metro.npz')
        _metro_file(metro, payload)
        cases.append(('sampler', metro))
        os.makedirs(tmp_path / 'amass' / 'DS' / 's', exist_ok=True)
        amass = str(tmp_path / 'amass' / 'DS' / 's' / f'{name}_poses.npz')
        gender = np.empty((), object)
        gender[()] = payload
        np.savez(amass, poses=np.zeros((10, 72)), trans=np.zeros((10, 3)), betas=np.zeros(10),
                 gender=gender, mocap_framerate=np.array(60.0))
        cases.append(('gender', amass))
    results = _drive(cases, tmp_path)
    assert len(results) == len(cases)
    for (kind, path), r in results.items():
        assert not r['loaded'], (kind, path, r)
        assert not osp.exists(marker), f'code ran: {kind} {path}'
        msg = r.get('message') or r['stderr']
        assert osp.basename(path) in msg, (kind, path, msg)
        assert 'Traceback' not in r['stderr'], r['stderr']
        if kind in ('convert', 'make_mesh_sampling'):
            assert r['rc'] == 1 and len(r['stderr'].strip().splitlines()) == 1, r
        if kind == 'gender':
            assert r['error'] == 'AmassFileError' and 'unsafe_pickle' in msg, r


def _metro_file(path, payload=None):
    """A METRO-layout mesh_downsampling.npz: object arrays of scipy sparse matrices (what GraphCMR
    pickled), optionally with one matrix replaced by a payload."""
    import scipy.sparse as sp
    rng = np.random.default_rng(0)
    D = sp.csc_matrix(np.eye(8)[::2])                # 8 -> 4
    U = sp.csc_matrix(rng.uniform(0, 1, (8, 4)))
    D2, U2 = sp.csc_matrix(np.eye(4)[::2]), sp.csc_matrix(rng.uniform(0, 1, (4, 2)))
    Ds, Us = np.empty(2, object), np.empty(2, object)
    Ds[:] = [D, D2]
    Us[:] = [U, U2]
    if payload is not None:
        Ds[1] = payload
    np.savez(path, A=np.zeros(1), D=Ds, U=Us)


def test_metro_sampling_file_still_loads(tmp_path):
    from mmpose_mpt.body_models.mesh_sampler import MeshSampler, load_mesh_sampling
    good = tmp_path / 'mesh_downsampling.npz'
    _metro_file(good)
    s = MeshSampler(str(good))
    assert s.num_vertices == [8, 4, 2]
    d = load_mesh_sampling(str(good))
    np.testing.assert_allclose(d['D'][0].toarray(), np.eye(8)[::2])


def test_load_npz_restricted_reads_plain_and_object_members(tmp_path):
    p = tmp_path / 'x.npz'
    obj = np.empty(2, object)
    obj[:] = [np.arange(3), 'male']
    np.savez(p, a=np.arange(4.0), b=obj)
    z = load_npz_restricted(str(p))
    np.testing.assert_array_equal(z['a'], np.arange(4.0))
    assert z['b'].dtype == object and z['b'][1] == 'male'
    np.testing.assert_array_equal(z['b'][0], np.arange(3))


def test_build_cannot_set_attributes_of_allowed_functions_or_classes():
    """BUILD with a slot state would setattr() on whatever is on the stack: only stand-ins and the
    array / dtype builders accept a state."""
    from mmpose_mpt.utils import restricted_pickle as rp
    name = b'__defaults__'
    for glob in (b'cnumpy.core.multiarray\n_reconstruct\n', b'cbuiltins\nlist\n', b'cnumpy\nndarray\n',
                 b'cscipy.sparse\ncsr_matrix\n'):
        data = (b'\x80\x02' + glob + b'N}X' + len(name).to_bytes(4, 'little') + name + b'K\x01\x85s\x86b.')
        before = rp._reconstruct.__defaults__
        with pytest.raises(RestrictedPickleError, match='setting the state'):
            restricted_loads(data)
        assert rp._reconstruct.__defaults__ == before


# ------------------------------------------------------------------- resource bombs (found by review)
def _list_dag(depth: int) -> bytes:
    """Opcodes of L_depth with L_0 = [] and L_{k+1} = [L_k, L_k] through the memo: ~10 bytes a level,
    2**depth nodes when written out as a tree."""
    out = b']q\x00'
    for k in range(depth):
        out += b']q' + bytes([k + 1]) + b'(h' + bytes([k]) + b'h' + bytes([k]) + b'e'
    return out


def _fake_module_pickle(obj_factory):
    """Pickle objects of classes named like chumpy's, without chumpy (a throw-away module)."""
    import types
    mods = {}
    for name in ('chumpy', 'chumpy.ch', 'chumpy.ch_ops'):
        mods[name] = sys.modules[name] = types.ModuleType(name)

    class Ch:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    class add(Ch):
        pass

    for cls, mod in ((Ch, 'chumpy.ch'), (add, 'chumpy.ch_ops')):
        cls.__module__, cls.__qualname__ = mod, cls.__name__
        setattr(mods[mod], cls.__name__, cls)
    try:
        return pickle.dumps(obj_factory(Ch, add), protocol=2)
    finally:
        for name in mods:
            sys.modules.pop(name, None)


def _bomb_files(tmp_path) -> dict:
    import scipy.sparse as sp
    files = {}

    def put(name, data):
        files[name] = str(tmp_path / f'{name}.pkl')
        with open(files[name], 'wb') as fh:
            fh.write(data)

    v = b'X\x0a\x00\x00\x00v_template'
    put('deep_key', b'\x80\x02}' + b')' + b'\x85' * 300000 + b'K\x01s.')
    put('deep_frozenset', b'\x80\x02}' + v + b'cbuiltins\nfrozenset\n(' + b')' + b'\x85' * 300000
        + b'l\x85Rs.')
    put('list_dag', b'\x80\x02}' + v + _list_dag(40) + b's.')
    put('scalar_of_list', b'\x80\x02}' + v + b'cnumpy\nfloat64\n' + _list_dag(3) + b'\x85Rs.')
    put('chumpy_broadcast', _fake_module_pickle(lambda Ch, add: {'v_template': add(
        a=add(a=Ch(x=np.zeros((1600, 1, 1), np.int8)), b=Ch(x=np.zeros((1, 1600, 1), np.int8))),
        b=Ch(x=np.zeros((1, 1, 1600), np.int8)))}))

    def shared(Ch, add):
        x = Ch(x=np.ones(3))
        for _ in range(18):
            x = add(a=x, b=x)
        return {'v_template': x}

    put('chumpy_shared_operands', _fake_module_pickle(shared))
    put('empty_sparse_30000', pickle.dumps({'J_regressor': sp.csr_matrix((30000, 30000))}, protocol=2))
    u = pickle.dumps({'bs_style': np.array(['a'])}, protocol=2).replace(b'a\x00\x00\x00', b'\xff' * 4)
    put('bad_code_points', u)
    return files


_BOMB_DRIVER = r"""
import json, resource, sys, time, warnings
warnings.simplefilter('ignore')
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a bomb fails instead of swapping
sys.path.insert(0, {repo!r})
from mmpose_mpt.body_models.body_model_file import load_body_model_file
for name, path in json.loads(sys.argv[1]).items():
    print(json.dumps(dict(start=name)), flush=True)
    t = time.time()
    try:
        d = load_body_model_file(path)
        res = dict(loaded=True, keys=sorted(d), value=str(d.get('v_template', ''))[:40])
    except Exception as e:
        res = dict(loaded=False, error=type(e).__name__, message=str(e))
    res.update(name=name, seconds=round(time.time() - t, 2))
    print(json.dumps(res), flush=True)
"""


def test_resource_bombs_are_refused_quickly(tmp_path):
    """Deep keys (C-stack overflow in tuple hashing), shared sub-lists (2**40 nodes), a numpy scalar of
    a list, chumpy broadcasting to 4 GB, a chumpy chain sharing its operands (exponential when
    converted per path), an empty 30000^2 sparse matrix densified, invalid UCS4 code points: each is
    one BodyModelFileError within seconds (the shared-operand chain, being legitimate, loads)."""
    import json
    files = _bomb_files(tmp_path)
    script = tmp_path / 'bombs.py'
    script.write_text(_BOMB_DRIVER.format(repo=REPO))
    proc = subprocess.run([sys.executable, str(script), json.dumps(files)], capture_output=True, text=True,
                          timeout=240, cwd=REPO)
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith('{')]
    assert proc.returncode == 0, f'crashed (rc {proc.returncode}) on {lines[-1]}: {proc.stderr[-1000:]}'
    results = {r['name']: r for r in lines if 'name' in r}
    assert set(results) == set(files)
    for name, r in results.items():
        assert r['seconds'] < 30, r
        if name == 'chumpy_shared_operands':
            assert r['loaded'] and '[262144. 262144. 262144.]' in r['value'], r   # 2**18 * 1
        else:
            assert not r['loaded'] and r['error'] == 'BodyModelFileError', r
            assert files[name] in r['message'], r


def test_sparse_shapes_are_checked_before_allocation(tmp_path):
    """A 1 KB file describing an empty (17, 10**9) regressor or a (10**9, 1) METRO matrix is refused
    before anything of that size is allocated."""
    import scipy.sparse as sp

    from mmpose_mpt.body_models.body_model_file import BodyModelFileError
    from mmpose_mpt.body_models.joint_regressors import load_joint_regressor
    from mmpose_mpt.body_models.mesh_sampler import MeshSamplingFileError, load_mesh_sampling
    p = tmp_path / 'J_regressor.npz'
    sp.save_npz(p, sp.csr_matrix((17, 10**9)))
    with pytest.raises(BodyModelFileError, match='1000000000 columns'):
        load_joint_regressor(str(p), num_vertices=6890)
    with pytest.raises(BodyModelFileError, match='sides up to'):
        load_joint_regressor(str(p))
    sp.save_npz(p, sp.csr_matrix((20000, 20000)))
    with pytest.raises(BodyModelFileError, match='too large to densify'):
        load_joint_regressor(str(p))
    m = tmp_path / 'metro.npz'
    D, U = np.empty(1, object), np.empty(1, object)
    D[0], U[0] = sp.coo_matrix((10**9, 1)), sp.coo_matrix((1, 10**9))
    np.savez(m, D=D, U=U)
    with pytest.raises(MeshSamplingFileError, match='sides up to'):
        load_mesh_sampling(str(m))
