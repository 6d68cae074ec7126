import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    ns: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmpose_mpt', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


def read_requirements(name: str) -> list:
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    reqs = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                reqs.append(line)
    return reqs


setup(
    name='mmpose_mpt',
    version=read_version(),
    description='MPT: Mesh Pre-Training with Transformers for human pose and mesh reconstruction '
    '(an mmpose 1.x plugin)',
    long_description=open(osp.join(osp.dirname(__file__), 'README.md')).read()
    if osp.exists(osp.join(osp.dirname(__file__), 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tools', 'configs')),
    python_requires='>=3.8',
    # torch, mmcv (built from source), mmpose and mmdet (--no-deps) are installed by tools/setup_env.sh;
    # listing them here would make pip pull CUDA torch, torchvision and chumpy.
    install_requires=[r for r in read_requirements('runtime.txt')],
    extras_require={
        'tests': read_requirements('tests.txt'),
        'onnx': read_requirements('onnx.txt'),
        # through pip extras pyrender keeps its own PyOpenGL==3.1.0 pin: fine for EGL; OSMesa needs
        # tools/setup_env.sh (PyOpenGL 3.1.7 + pyrender --no-deps)
        'render': read_requirements('render_nodeps.txt') +
        [r for r in read_requirements('render.txt') if not r.lower().startswith('pyopengl')],
    },
    zip_safe=False,
)
