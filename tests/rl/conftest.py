"""The server tests' tiny saved models, shared."""

from serve.conftest import multi_dir, scalar_dir  # noqa: F401
