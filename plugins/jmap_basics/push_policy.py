"""Where push subscriptions may point, and how many a user may have.

The operator's settings reach the plugin as ``core.options["push"]`` (a
mapping; ``jmapserver.config`` fills it from ``push_allow_http``,
``push_allow_private`` and ``push_allow``)::

    {"allow_http": False, "allow_private": False, "allow": ["push.lan", "10.1.0.0/16"],
     "max_subscriptions": 20, "creates_per_window": 10, "create_window": 600}

SSRF guard [core-8.6-ssrf]: a URL must be ``https://`` (``http://`` only
when ``allow_http``) and every address its host resolves to must be a
public one: loopback, private (RFC 1918, ULA), link-local, shared
(100.64/10), multicast, unspecified, reserved and IPv4-mapped forms of
these are refused, unless ``allow_private`` is set or the host name or the
address is in ``allow`` (host names, addresses or networks).  Literal
addresses are checked when the subscription is created; host names are
resolved when a push is sent (never on the request path), and the
connection goes to the address that was checked, so a DNS answer that
changes between the check and the connection cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: [core-8.6-limits] defaults: subscriptions per user, creations per window.
MAX_SUBSCRIPTIONS = 20
CREATES_PER_WINDOW = 10
CREATE_WINDOW = 600.0
MAX_URL_LENGTH = 2048


class UrlRefused(ValueError):
    """A push URL the policy does not allow; the message says why."""


class Unresolvable(UrlRefused):
    """The host did not resolve (perhaps for now: a delivery retries)."""


@dataclass(frozen=True, slots=True)
class PushPolicy:
    allow_http: bool = False
    allow_private: bool = False
    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    max_subscriptions: int = MAX_SUBSCRIPTIONS
    creates_per_window: int = CREATES_PER_WINDOW
    create_window: float = CREATE_WINDOW
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> PushPolicy:
        options = dict(options or {})
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in options.pop("allow", ()) or ():
            try:
                networks.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                hosts.add(str(item).lower().rstrip("."))
        return cls(
            allow_http=bool(options.pop("allow_http", False)),
            allow_private=bool(options.pop("allow_private", False)),
            allow_hosts=frozenset(hosts),
            allow_networks=tuple(networks),
            max_subscriptions=int(options.pop("max_subscriptions", MAX_SUBSCRIPTIONS)),
            creates_per_window=int(options.pop("creates_per_window", CREATES_PER_WINDOW)),
            create_window=float(options.pop("create_window", CREATE_WINDOW)),
            extra=options,
        )

    # -- checks --------------------------------------------------------------

    def address_allowed(self, address: IPAddress, host: str) -> bool:
        if self.allow_private or host.lower().rstrip(".") in self.allow_hosts:
            return True
        if any(address in network for network in self.allow_networks):
            return True
        return is_public(address)

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of an acceptable URL, or :class:`UrlRefused`.

        Checks everything that needs no DNS: scheme, shape, literal addresses
        and ``localhost`` names."""
        if len(url) > MAX_URL_LENGTH:
            raise UrlRefused(f"the url is longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlRefused("the url is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            raise UrlRefused("the url must start with https://")
        host = (parts.hostname or "").lower()
        if not host or parts.username is not None or parts.password is not None:
            raise UrlRefused("the url must name a host (and no user or password)")
        if any(ch.isspace() for ch in url):
            raise UrlRefused("the url must not contain white space")
        port = port or (443 if scheme == "https" else 80)
        literal = _literal(host)
        if literal is not None:
            if not self.address_allowed(literal, host):
                raise UrlRefused(f"the url points at an internal address ({literal})")
        elif (host == "localhost" or host.endswith((".localhost", ".local", ".internal"))) and not (
            self.allow_private or host in self.allow_hosts
        ):
            raise UrlRefused(f"the url points at an internal host ({host})")
        return scheme, host, port

    def resolve(self, host: str, port: int) -> IPAddress:
        """The first address of ``host`` this policy allows, checking all of
        them: one internal answer refuses the host [core-8.6-ssrf]."""
        literal = _literal(host)
        if literal is not None:
            if not self.address_allowed(literal, host):
                raise UrlRefused(f"{host} is an internal address")
            return literal
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as ex:
            raise Unresolvable(f"{host} does not resolve ({ex})") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if not addresses:
            raise Unresolvable(f"{host} does not resolve")
        for address in addresses:
            if not self.address_allowed(address, host):
                raise UrlRefused(f"{host} resolves to an internal address ({address})")
        return addresses[0]


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local,
    shared, reserved, multicast or unspecified (IPv4-mapped and 6to4 forms
    judged by the IPv4 address they carry)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not (address.is_multicast or address.is_unspecified)
