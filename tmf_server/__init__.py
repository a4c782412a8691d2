"""TMF656 Service Problem Management server for customer QoS performance degradation reports."""
import warnings
from importlib.metadata import PackageNotFoundError, version

# Connexion imports Starlette's test client at start-up, which warns about httpx on every server start.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

try:
    __version__ = version("tmf-server")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
