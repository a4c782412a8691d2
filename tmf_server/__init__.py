"""TMF656 Service Problem Management server for customer QoS performance degradation reports."""
import warnings

# Connexion imports Starlette's test client at start-up, which warns about httpx on every server start.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
