"""keep_freed_memory(): glibc keeps freed memory (tools/benchmark_cpu_allocator.py measures the gain)."""
import os
import subprocess
import sys

from conftest import REPO


def _run(code: str, **env) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_')}
    full.update(env, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, '-c', code], env=full, capture_output=True, text=True,
                          check=True).stdout.strip()


# the module from its file: importing the package would cost seconds per interpreter
CODE = ('import os, importlib.util as u; '
        f's = u.spec_from_file_location("a", {os.path.join(REPO, "mmpose_mpt", "utils", "cpu_allocator.py")!r}); '
        'm = u.module_from_spec(s); s.loader.exec_module(m); '
        'print(m.keep_freed_memory(), os.environ.get("MALLOC_MMAP_MAX_"))')


def test_takes_effect_and_reaches_child_processes():
    import platform
    ok = platform.libc_ver()[0] == 'glibc'
    assert _run(CODE) == ('True 0' if ok else 'False None')


def test_can_be_turned_off():
    assert _run(CODE, MMPOSE_MPT_KEEP_FREED_MEMORY='0') == 'False None'


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
        with contextlib.redirect_stdout(out):
            bench.child(bench.argparse.Namespace(**{
                'child': runs[-1], 'iters': 2, 'batch_size': 2, 'threads': 1, 'small': '--small' in cmd}))
        return subprocess.CompletedProcess(cmd, 0, out.getvalue(), '')

    monkeypatch.setattr(bench.subprocess, 'run', run_child)
    monkeypatch.setattr(sys, 'argv', ['benchmark_cpu_allocator.py', '--small', '--rounds', '2', '--iters', '2',
                                      '--batch-size', '2'])
    bench.main()
    out = capsys.readouterr().out
    assert runs == ['default', 'keep'] * 2
    ratio = float(out.strip().splitlines()[-1].split('ratio:')[1])
    assert ratio > 0 and 'keep_freed_memory()' in out and 'median of 2 rounds' in out
