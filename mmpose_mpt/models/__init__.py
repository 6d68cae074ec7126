from . import data_preprocessors, estimators, heads, losses  # noqa: F401
