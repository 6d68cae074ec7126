"""keep_freed_memory(): glibc keeps freed memory (tools/benchmark_cpu_allocator.py measures the gain)."""
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO


def _run(code: str, **env) -> str:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith('MALLOC_') and k not in ('GLIBC_TUNABLES', 'MMPOSE_MPT_KEEP_FREED_MEMORY')}
    full.update(env, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, '-c', code], env=full, capture_output=True, text=True,
                          check=True).stdout.strip()


# the module from its file: importing the package would cost seconds per interpreter
LOAD = ('import importlib.util as u\n'
        f's = u.spec_from_file_location("a", {os.path.join(REPO, "mmpose_mpt", "utils", "cpu_allocator.py")!r})\n'
        'm = u.module_from_spec(s)\ns.loader.exec_module(m)\n')
# malloc 48 MB and report whether glibc mmap'ed it (mallinfo2().hblkhd: mmap'ed bytes) while it is held
PROBE = '\n'.join([
    'import ctypes',
    'class MallInfo2(ctypes.Structure):',
    '    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",',
    '                                               "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]',
    'libc = ctypes.CDLL("libc.so.6")',
    'libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]',
    'libc.free.argtypes = [ctypes.c_void_p]',
    'libc.mallinfo2.restype = MallInfo2',
    'p = libc.malloc(48 << 20)',
    'print("mmapped", libc.mallinfo2().hblkhd >= 48 << 20)',
    'libc.free(p)', ''])
# the function, the probe here, then the probe in a process started from here
CHILD = (LOAD + 'print(m.keep_freed_memory())\n' + PROBE + 'import subprocess, sys\n'
         f'print(subprocess.run([sys.executable, "-c", {PROBE!r}], capture_output=True, text=True).stdout.strip())\n')


def _glibc_with_mallinfo2() -> bool:
    import ctypes
    import platform
    if platform.libc_ver()[0] != 'glibc':
        return False
    try:
        return hasattr(ctypes.CDLL('libc.so.6'), 'mallinfo2')
    except OSError:
        return False


GLIBC = pytest.mark.skipif(not _glibc_with_mallinfo2(), reason='glibc >= 2.33 (mallopt, mallinfo2) only')


@GLIBC
def test_takes_effect_and_reaches_child_processes():
    # without it a 48 MB block is mmap'ed (so the probe can tell); with it, it is not, neither here nor
    # in a process started afterwards (through the MALLOC_*_ variables)
    assert _run(PROBE) == 'mmapped True'
    assert _run(CHILD).splitlines() == ['True', 'mmapped False', 'mmapped False']


@GLIBC
def test_can_be_turned_off_and_leaves_the_users_settings_alone():
    assert _run(CHILD, MMPOSE_MPT_KEEP_FREED_MEMORY='0').splitlines() == ['False', 'mmapped True',
                                                                          'mmapped True']
    assert _run(LOAD + 'print(m.keep_freed_memory())', GLIBC_TUNABLES='glibc.malloc.mmap_max=1') == 'False'


@GLIBC
def test_the_benchmark_prints_a_ratio(monkeypatch, capsys):
    """tools/benchmark_cpu_allocator.py's rounds and report; its two child runs here in this process (two
    fresh interpreters would cost ~15 s of imports; the allocator setting is this process's anyway)."""
    import contextlib
    import importlib.util
    import io
    spec = importlib.util.spec_from_file_location(
        'benchmark_cpu_allocator', os.path.join(REPO, 'tools', 'benchmark_cpu_allocator.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    runs = []

    real_run = subprocess.run

    def run_child(cmd, env=None, **kwargs):
        if '--child' not in cmd:               # subprocess is one module: others' calls go through
            return real_run(cmd, env=env, **kwargs)
        assert not any(k.startswith('MALLOC_') for k in env)        # the default run gets glibc's defaults
        runs.append(cmd[cmd.index('--child') + 1])
        out = io.StringIO()
        threads = torch.get_num_threads()
        with contextlib.redirect_stdout(out), torch.random.fork_rng():    # its seed and threads stay its own
            bench.child(bench.argparse.Namespace(**{
                'child': runs[-1], 'iters': 2, 'batch_size': 2, 'threads': 1, 'small': '--small' in cmd}))
        torch.set_num_threads(threads)
        return subprocess.CompletedProcess(cmd, 0, out.getvalue(), '')

    monkeypatch.setattr(bench.subprocess, 'run', run_child)
    monkeypatch.setattr(sys, 'argv', ['benchmark_cpu_allocator.py', '--small', '--rounds', '2', '--iters', '2',
                                      '--batch-size', '2'])
    bench.main()
    out = capsys.readouterr().out
    assert runs == ['default', 'keep'] * 2
    ratio = float(out.strip().splitlines()[-1].split('ratio:')[1])
    assert ratio > 0 and 'keep_freed_memory()' in out and 'median of 2 rounds' in out
