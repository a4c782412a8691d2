"""Which callback URLs the server may call: http(s) only, to globally routable addresses; loopback and the
non-public ranges only when TMF_CALLBACK_ALLOW says so. Every spelling of a host is brought to one form first."""
from __future__ import annotations

import functools
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from tmf_server.errors import BadRequest

KEYWORDS = ("loopback", "private")


def _allowed_networks(allow: tuple[str, ...]):
    networks = []
    for item in allow:
        if item not in KEYWORDS:
            networks.append(ipaddress.ip_network(item, strict=False))
    return networks


# What inet_aton reads as an IPv4 address besides the dotted quad: 2130706433, 0x7f.1, 0177.0.0.1, 127.1.
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")


def canonical_host(host: str) -> str:
    """The host in one form: lower case, without the trailing dot of an absolute name (`localhost.`)."""
    return host.lower()[:-1] if host.endswith(".") else host.lower()


def literal_address(host: str):
    """The address a host names literally, in any spelling the resolver would accept; None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _refusal(address, allow: tuple[str, ...]) -> str | None:
    """Why an address may not be called, or None."""
    if address.version == 6 and address.ipv4_mapped is not None:  # ::ffff:10.0.0.1 reaches 10.0.0.1
        address = address.ipv4_mapped
    if any(address in network for network in _allowed_networks(allow)):
        return None
    if address.is_loopback:
        return None if "loopback" in allow else "a loopback address"
    if address.is_multicast or address.is_unspecified or address == ipaddress.IPv4Address("255.255.255.255"):
        return "a multicast, broadcast or unspecified address"
    # is_global is False for private, shared (100.64.0.0/10), link-local, benchmarking (198.18.0.0/15), IETF
    # (192.0.0.0/24), documentation and reserved ranges; is_reserved also covers 240.0.0.0/4.
    if not address.is_global or address.is_reserved or address.is_link_local:
        return None if "private" in allow else _non_public_kind(address)
    return None


_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def _non_public_kind(address) -> str:
    if address.is_link_local:
        return "a link-local address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if any(address in network for network in _PRIVATE if network.version == address.version):
        return "a private address"
    return "a reserved or special-purpose address"


def check_callback(url: str, allow: tuple[str, ...]) -> None:
    """Raises BadRequest unless `url` is an http(s) URL whose host the policy lets the server reach."""
    allowed_addresses(url, allow)


def allowed_addresses(url: str, allow: tuple[str, ...]) -> list:
    """check_callback, returning the addresses it checked.

    The dispatcher connects only to these addresses, so a DNS answer that changes between the check and
    the connection cannot redirect a delivery. A host name is resolved at every call; the checks that depend
    on the URL and the policy alone are kept (the dispatcher asks once per delivery).
    """
    scheme, host, port, literal = _checked_url(url, allow)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port or (443 if scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # UnicodeError: a host the IDNA codec refuses, e.g. with an empty label
        raise BadRequest(f"callback host '{host}' cannot be resolved.", code="invalidCallback") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        _refuse_unless_allowed(url, address, allow)
    return addresses


@functools.lru_cache(maxsize=4096)
def _checked_url(url: str, allow: tuple[str, ...]) -> tuple:
    """(scheme, canonical host, port, the literal address it names or None), once the URL's form and, for a
    literal address, the policy are checked; raises BadRequest (not kept: a refusal is checked again)."""
    # RFC 3986 has no spaces or control characters in a URL, and no HTTP request may carry them in its target.
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise BadRequest(f"callback {url!r} is not a valid URL: it contains spaces or control characters.",
                         code="invalidCallback")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadRequest(f"callback '{url}' is not a valid URL.", code="invalidCallback") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"callback '{url}' must be an absolute http or https URL.", code="invalidCallback")
    if parts.username or parts.password:
        raise BadRequest("callback must not carry credentials in the URL.", code="invalidCallback")
    if parts.netloc.rpartition("@")[2].startswith("["):
        raise BadRequest(f"callback '{url}': an IPv6 address needs a host name (openapi/tmf656-v4.yaml, "
                         f"HubSubscriptionInput.callback).", code="invalidCallback")
    host = canonical_host(parts.hostname)
    literal = literal_address(host)
    if literal is not None:
        _refuse_unless_allowed(url, literal, allow)
    return parts.scheme, host, port, literal


def _refuse_unless_allowed(url: str, address, allow: tuple[str, ...]) -> None:
    reason = _refusal(address, allow)
    if reason:
        raise BadRequest(f"callback '{url}' points to {reason} ({address}); such callbacks are refused "
                         f"unless TMF_CALLBACK_ALLOW permits them.", code="callbackNotAllowed")
