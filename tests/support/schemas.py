"""The request body schemas of the served documents, as the server loads them and Connexion hands them to the
body validator."""
from __future__ import annotations

import functools

from connexion.spec import OpenAPISpecification

from tmf_server.app import ADMIN_SPEC_PATH, INTAKE_SPEC_PATH, SPEC_PATH, load_spec, state_limit
from tmf_server.security.contract import served_document
from tmf_server.settings import Settings

DOCUMENTS = {"tmf656": SPEC_PATH, "admin": ADMIN_SPEC_PATH, "intake": INTAKE_SPEC_PATH}


def served(name: str) -> dict:
    """The document as the server serves it with the default settings."""
    settings = Settings()
    return state_limit(served_document(load_spec(DOCUMENTS[name]), settings), settings.max_limit)


@functools.cache
def resolved(name: str) -> OpenAPISpecification:
    return OpenAPISpecification(served(name))


def body_schema(name: str, template: str, method: str, media_type: str = "application/json") -> dict:
    """The schema Connexion passes to the body validator: the resolved one, with the document's components."""
    spec = resolved(name)
    content = spec["paths"][template][method.lower()]["requestBody"]["content"][media_type]
    return {**content["schema"], "components": spec["components"]}
