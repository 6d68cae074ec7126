from . import transforms  # noqa: F401
from .amass_index import (AmassFileError, MoCapIndex, MoCapIndexError,  # noqa: F401
                          prepare_amass)
from .complement_dataset import ComplementDataset, ComplementDatasetError  # noqa: F401
from .freihand_dataset import FreiHANDDataset, FreiHANDDatasetError  # noqa: F401
from .mano_param_dataset import ManoParamDataset, ManoParamDatasetError  # noqa: F401
from .mesh_image_dataset import MeshImageDataset, MeshImageDatasetError  # noqa: F401
from .mocap_heatmap_dataset import MoCapHeatmapDataset  # noqa: F401
from .samplers import ResumableMultiSourceSampler  # noqa: F401
from .toy_hands import make_toy_hands  # noqa: F401
from .toy_images import make_toy_images  # noqa: F401
from .toy_mocap import make_toy_mocap  # noqa: F401
