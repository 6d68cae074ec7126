from . import data_preprocessors, estimators, heads, losses, necks  # noqa: F401
