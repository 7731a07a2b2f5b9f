"""Where an outbound webhook may connect: public addresses only, unless an admin says so.

A webhook URL is whatever an admin typed, so without a check it reaches what the
workers can reach: the cloud's metadata service (169.254.169.254), a database on
127.0.0.1, the office network.  Its host is resolved, and every address it resolves
to must be public: not loopback, link-local, private (RFC 1918, fc00::/7, CGNAT),
multicast, unspecified, reserved or documentation ranges, nor an IPv6 address that
embeds one of those (IPv4-mapped, 6to4, NAT64).  WEBHOOK_ALLOWED_NETWORKS (CIDRs)
names ranges that are let through all the same, e.g. a receiver inside the network.

The check runs when an endpoint is saved (WebhookEndpoint.clean) and again at each
send, where the request then goes to the address that was checked (`pinned`): a
name that resolved to a public address at the check cannot point the connection
elsewhere a moment later (DNS rebinding).
"""

import ipaddress
import socket
from functools import lru_cache

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Refused(ValueError):
    """The URL may not be called.  The message says why, for the admin; `kind` says it
    without naming the address, for the incident's timeline."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class Unresolved(Refused):
    """The host does not resolve (now: DNS failures may pass)."""


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def allowed_networks() -> tuple:
    return _networks(tuple(settings.WEBHOOK_ALLOWED_NETWORKS))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def why_refused(ip: IPAddress) -> str | None:
    """None if a webhook may connect to `ip`; else what kind of address it is."""
    if any(ip in network for network in allowed_networks()):
        return None
    if ip.version == 6 and (inner := _embedded_ipv4(ip)) is not None:
        return why_refused(inner)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "not public"


def resolve(url: str) -> tuple[httpx.URL, list[IPAddress]]:
    """The URL and the addresses its host resolves to, every one of them allowed;
    raises Refused otherwise."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise Refused(f"is not a valid URL ({exc})", "invalid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise Refused("must be an http or https URL with a host", "invalid URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolved(f"host {parsed.host} does not resolve ({exc})", "host does not resolve") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in found))
    for ip in addresses:
        if reason := why_refused(ip):
            raise Refused(
                f"host {parsed.host} is {ip}, a {reason} address; webhooks may only reach public addresses "
                "(WEBHOOK_ALLOWED_NETWORKS lets named ranges through)",
                f"resolves to a {reason} address",
            )
    return parsed, addresses


def pinned(url: str) -> tuple[httpx.URL, dict, dict]:
    """What to send instead of `url`: the same request, to the first checked address.

    Returns the URL with the address as its host, the Host header, and the request
    extensions that make TLS check the certificate for the original host name."""
    parsed, addresses = resolve(url)
    headers = {"host": parsed.netloc.decode("ascii")}
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return parsed.copy_with(host=str(addresses[0])), headers, extensions
