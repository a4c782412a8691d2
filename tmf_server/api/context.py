"""What handlers need from the running app: the services, the settings and the request's URLs."""
from __future__ import annotations

from dataclasses import dataclass

import flask

from tmf_server.problems.service import ServiceProblemService
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.settings import BASE_PATH, Settings

EXTENSION_KEY = "tmf_server"


@dataclass
class Services:
    settings: Settings
    problems: ServiceProblemService
    problem_catalog: AttributeCatalog


def services() -> Services:
    return flask.current_app.extensions[EXTENSION_KEY]


def api_base_url() -> str:
    """Absolute URL of the API base path, from the configured public URL or the request."""
    root = services().settings.public_base_url or flask.request.host_url
    return root.rstrip("/") + BASE_PATH


def raw_query_string() -> str:
    return flask.request.query_string.decode("latin-1")
