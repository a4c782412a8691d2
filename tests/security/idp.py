"""A real identity provider for the tests, on a free loopback port: keys generated here (cryptography), a JWKS
document served over HTTP (every fetch counted), tokens signed with those keys (PyJWT), and an OAuth 2.0 token
endpoint for the client-credentials flow."""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tmf_server.store.embedded import free_port

ISSUER_PATH = "/realms/tmf"
AUDIENCE = "tmf656-server"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private_key, kid: str) -> dict:
    """The public JWK of a private key (RSA for RS256, P-256 for ES256)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
        jwk["alg"] = "RS256"
    else:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
        jwk["alg"] = "ES256"
    return {**jwk, "kid": kid, "use": "sig"}


class IdentityProvider:
    def __init__(self):
        self.port = free_port()
        self.keys: dict[str, object] = {}  # kid -> private key; the JWKS publishes their public halves
        self.published: list[str] = []
        self.jwks_fetches = 0
        self.token_requests: list[dict] = []
        self.clients: dict[str, tuple[str, str]] = {}  # client_id -> (secret, scope it is granted)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.add_key("key-1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url + ISSUER_PATH

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/protocol/openid-connect/certs"

    @property
    def token_url(self) -> str:
        return self.issuer + "/protocol/openid-connect/token"

    def add_key(self, kid: str, private_key=None, publish: bool = True) -> str:
        """A new signing key (key rotation: published now, so the server learns it on its next JWKS fetch)."""
        with self._lock:
            self.keys[kid] = private_key or rsa_key()
            if publish:
                self.published.append(kid)
        return kid

    def jwks(self) -> dict:
        with self._lock:
            return {"keys": [public_jwk(self.keys[kid], kid) for kid in self.published]}

    def token(self, scope: str | list[str] | None = "", *, sub: str = "user-1", client_id: str | None = "client-1",
              kid: str = "key-1", lifetime: int = 300, not_before: int | None = None, algorithm: str | None = None,
              key=None, **claims) -> str:
        """A signed access token; claims default to a valid one (issuer, audience, exp) and can be overridden."""
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + lifetime,
                   "jti": str(uuid.uuid4())}
        if client_id is not None:
            payload["client_id"] = client_id
        if scope is not None:
            payload["scope"] = scope if isinstance(scope, str) else " ".join(scope)
        if not_before is not None:
            payload["nbf"] = now + not_before
        payload.update(claims)
        signing_key = key or self.keys[kid]
        algorithm = algorithm or ("ES256" if isinstance(signing_key, ec.EllipticCurvePrivateKey) else "RS256")
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, signing_key, algorithm=algorithm,
                          headers={"kid": kid})

    def register_client(self, client_id: str, secret: str, scope: str) -> None:
        self.clients[client_id] = (secret, scope)

    def up(self) -> "IdentityProvider":
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path != provider.jwks_url.removeprefix(provider.url):
                    return self._answer(404, {"error": "not found"})
                with provider._lock:
                    provider.jwks_fetches += 1
                self._answer(200, provider.jwks())

            def do_POST(self):
                if self.path != provider.token_url.removeprefix(provider.url):
                    return self._answer(404, {"error": "not found"})
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0)))
                                                     .decode()).items()}
                basic = self.headers.get("Authorization", "")
                if basic.lower().startswith("basic "):
                    form["client_id"], _, form["client_secret"] = \
                        base64.b64decode(basic.split()[1]).decode().partition(":")
                provider.token_requests.append(form)
                known = provider.clients.get(form.get("client_id", ""))
                if form.get("grant_type") != "client_credentials" or not known or known[0] != form.get("client_secret"):
                    return self._answer(401, {"error": "invalid_client"})
                granted = [s for s in form.get("scope", known[1]).split() if s in known[1].split()]
                token = provider.token(granted, sub=f"service-account-{form['client_id']}",
                                       client_id=form["client_id"])
                self._answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                   "scope": " ".join(granted)})

            def log_message(self, *_args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def server_env(self, **extra) -> dict:
        """The environment of a server that trusts this provider."""
        return {"TMF_AUTH": "jwt", "TMF_JWT_ISSUER": self.issuer, "TMF_JWT_AUDIENCE": AUDIENCE,
                "TMF_JWKS_URL": self.jwks_url, **extra}
