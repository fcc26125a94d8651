"""metalplane: a bare-metal provisioning control plane speaking the MAAS 2.0 API."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

try:
    __version__ = _dist_version("metalplane")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.1.0"
