"""How the kit authenticates like a client: a given bearer token, or one fetched with the OAuth 2.0 client
credentials grant (RFC 6749 section 4.4). Credentials reach no report: reports redact Authorization headers, and
the token request is not an exchange of any check."""
from __future__ import annotations

import httpx


class TokenUnavailable(Exception):
    """The token endpoint gave no access token; the message names the endpoint and its answer, never the secret."""


def client_credentials_token(token_url: str, client_id: str, client_secret: str, scope: str | None,
                             timeout: float) -> str:
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    try:  # client authentication with HTTP Basic, which every authorization server must support (RFC 6749 2.3.1)
        response = httpx.post(token_url, data=form, auth=(client_id, client_secret), timeout=timeout,
                              headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise TokenUnavailable(f"the token endpoint {token_url} cannot be reached: {type(exc).__name__}") from None
    try:
        token = response.json().get("access_token") if response.status_code == 200 else None
    except ValueError:
        token = None
    if not isinstance(token, str) or not token:
        error = ""
        try:
            error = str(response.json().get("error", ""))[:100]
        except ValueError:
            pass
        raise TokenUnavailable(f"the token endpoint {token_url} answered {response.status_code}"
                               f"{' (' + error + ')' if error else ''} and no access token")
    return token
