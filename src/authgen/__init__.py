"""authgen: a GraphQL authentication service generated from one YAML user model."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("authgen")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
