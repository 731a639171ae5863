"""The one place the version is written: pyproject.toml reads it for the distribution's metadata
(setuptools' dynamic version) and rnnkit.__version__ imports it, so an installed wheel and a source
tree on PYTHONPATH report the same."""

__version__ = "0.1.0"
