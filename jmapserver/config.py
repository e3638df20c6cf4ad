"""Server settings: defaults, then a TOML file, then command-line flags.

Every flag of ``jmapcore serve`` has a key of the same name (dashes become
underscores) in the TOML file, so a deployment can live in one file::

    data = "/var/lib/jmapcore"
    listen = "127.0.0.1:8080"
    workers = 2
    backend = "lmdb"
    log_level = "info"
    base_url = "https://mail.example.com"   # else taken from each request
    trust_forwarded = false                 # honour X-Forwarded-Proto/Host
    tls_cert = "/etc/jmapcore/cert.pem"     # HTTPS (TLS 1.2+): both or neither
    tls_key = "/etc/jmapcore/key.pem"
    # Push subscriptions (RFC 8620 §7.2): by default their URLs must be
    # https:// and resolve to public addresses only (SSRF guard).
    push_allow_private = false              # allow any internal address
    push_allow = ["push.lan", "10.1.0.0/16"]  # or only these hosts/networks
    push_allow_http = false                 # allow http:// URLs (tests, a LAN)
    # Sending (EmailSubmission): the relay every message leaves through.
    smtp_relay = "127.0.0.1:25"             # HOST:PORT (port 25 if left out)
    smtp_starttls = false                   # STARTTLS before anything else
    smtp_username = "jmap"                  # AUTH with these, when set
    smtp_password = "secret"
    # Receiving (jmapcore lmtp): the flags of that command.
    lmtp_listen = "127.0.0.1:2424"
    lmtp_max_size = 50000000                # octets; larger messages get 552 5.3.4
    lmtp_hostname = "mx.example.com"        # in the greeting and Received headers
    lmtp_name_match = true                  # NAME@any-domain reaches account NAME

    [limits]                                # any jmapcore.api.Limits field
    maxSizeUpload = 20000000

    plugins = ["notes_plugin:plugin"]       # besides the installed entry points

    [backend_options]                       # passed to the backend's open function

"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jmapcore.api import Limits

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(Exception):
    """A configuration the operator must fix; the message says how."""


@dataclass(slots=True)
class Settings:
    """Everything needed to build a core and serve it."""

    data: Path | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 2
    backend: str = "lmdb"
    backend_options: dict[str, Any] = field(default_factory=dict)
    maildir_root: Path | None = None
    smtp_relay: tuple[str, int] | None = None
    #: The relay's STARTTLS and AUTH (EmailSubmission's outbound queue).
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    #: ``jmapcore lmtp``: where it listens, the largest message, the name in
    #: its greeting and Received headers (None: the FQDN), and whether
    #: NAME@any-domain reaches account NAME.
    lmtp_listen: tuple[str, int] = ("127.0.0.1", 2424)
    lmtp_max_size: int = 50_000_000
    lmtp_hostname: str | None = None
    lmtp_name_match: bool = True
    limits: dict[str, int] = field(default_factory=dict)
    log_level: str = "info"
    base_url: str | None = None
    trust_forwarded: bool = False
    #: ``module:attribute`` plugins loaded besides the installed entry points.
    plugins: list[str] = field(default_factory=list)
    #: PEM certificate chain and private key; both set means serve HTTPS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Push subscription URLs ([core-8.6-ssrf]): internal addresses allowed
    #: (all, or these hosts/networks), plain http allowed.
    push_allow_private: bool = False
    push_allow: list[str] = field(default_factory=list)
    push_allow_http: bool = False

    def plugin_options(self) -> dict[str, Any]:
        """The settings plugins read from ``Core.options``."""
        return {
            "push": {
                "allow_private": self.push_allow_private,
                "allow": list(self.push_allow),
                "allow_http": self.push_allow_http,
            },
            "submission": {
                "relay": self.smtp_relay,
                "starttls": self.smtp_starttls,
                "username": self.smtp_username,
                "password": self.smtp_password,
            },
        }

    @property
    def tls(self) -> bool:
        """Whether the server itself terminates TLS."""
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self) -> str:
        """Where a local client reaches the server (for the startup line)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        scheme = "https" if self.tls else "http"
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"{scheme}://[{host}]:{self.port}" if ":" in host else f"{scheme}://{host}:{self.port}"

    def core_limits(self) -> Limits:
        return dataclasses.replace(Limits(), **self.limits)


def parse_host_port(value: str, what: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` or ``[v6]:PORT`` → (host, port), with a message on error."""
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"{what}: {value!r} is not HOST:PORT")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
    if not port_text and default_port is not None:
        port_text = str(default_port)
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not HOST:PORT") from None
    if not host or not 0 <= port <= 65535:
        raise ConfigError(f"{what}: {value!r} is not HOST:PORT (port 0-65535)")
    return host, port


def _path(value: Any, key: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a path string")
    path = Path(value).expanduser()
    return (base / path).resolve()


def _want(value: Any, kind: type | tuple[type, ...], key: str, what: str) -> Any:
    # bool is an int in Python; a flag that says ``workers = true`` is a mistake.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{key} must be {what}, not {value!r}")
    return value


_LIMIT_NAMES = {f.name for f in dataclasses.fields(Limits)} - {"collationAlgorithms"}


def _set_workers(settings: Settings, value: Any, where: str, base: Path) -> None:
    if _want(value, int, where, "an integer") < 1:
        raise ConfigError(f"{where} must be at least 1")
    settings.workers = value


def _set_listen(settings: Settings, value: Any, where: str, base: Path) -> None:
    settings.host, settings.port = parse_host_port(_want(value, str, where, "HOST:PORT"), where)


def _set_smtp_relay(settings: Settings, value: Any, where: str, base: Path) -> None:
    settings.smtp_relay = parse_host_port(_want(value, str, where, "HOST:PORT"), where, 25)


def _set_lmtp_listen(settings: Settings, value: Any, where: str, base: Path) -> None:
    settings.lmtp_listen = parse_host_port(_want(value, str, where, "HOST:PORT"), where)


def _set_lmtp_max_size(settings: Settings, value: Any, where: str, base: Path) -> None:
    if _want(value, int, where, "an integer") < 1:
        raise ConfigError(f"{where} must be at least 1")
    settings.lmtp_max_size = value


def _set_log_level(settings: Settings, value: Any, where: str, base: Path) -> None:
    level = _want(value, str, where, "a log level").lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{where} must be one of {', '.join(LOG_LEVELS)}")
    settings.log_level = level


def _set_base_url(settings: Settings, value: Any, where: str, base: Path) -> None:
    url = _want(value, str, where, "a URL")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where} must start with http:// or https://")
    settings.base_url = url.rstrip("/")


def _set_limits(settings: Settings, value: Any, where: str, base: Path) -> None:
    for name, limit in _want(value, dict, where, "a table").items():
        if name not in _LIMIT_NAMES:
            known = ", ".join(sorted(_LIMIT_NAMES))
            raise ConfigError(f"{where}: unknown limit {name!r} (known: {known})")
        if _want(limit, int, f"{where}.{name}", "an integer") < 1:
            raise ConfigError(f"{where}.{name} must be at least 1")
        settings.limits[name] = limit


def _set_plugins(settings: Settings, value: Any, where: str, base: Path) -> None:
    for item in _want(value, list, where, "a list of MODULE:ATTR strings"):
        if not isinstance(item, str) or ":" not in item:
            raise ConfigError(f"{where}: {item!r} is not MODULE:ATTR")
        settings.plugins.append(item)


def _set_push_allow(settings: Settings, value: Any, where: str, base: Path) -> None:
    items = [value] if isinstance(value, str) else _want(value, list, where, "a list of hosts or networks")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}: {item!r} is not a host name, address or network")
        settings.push_allow.append(item.strip())


_Setter = Callable[[Settings, Any, str, Path], None]


def _readable_file(attribute: str) -> _Setter:
    """A setter for a file the server reads at startup (TLS certificate, key)."""

    def setter(settings: Settings, value: Any, where: str, base: Path) -> None:
        path = _path(value, where, base)
        try:
            with path.open("rb"):
                pass
        except OSError as ex:
            raise ConfigError(f"{where}: cannot read {path}: {ex.strerror}") from None
        setattr(settings, attribute, path)

    return setter


def check_tls_pair(settings: Settings) -> None:
    """TLS needs both the certificate and its key; one alone is a mistake."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        given, missing = ("tls_cert", "tls_key") if settings.tls_key is None else ("tls_key", "tls_cert")
        raise ConfigError(
            f"{given} is set but {missing} is not: HTTPS needs both "
            f"(--tls-cert FILE --tls-key FILE, or tls_cert/tls_key in the config file)"
        )


#: One checked setter per setting; the keys are the TOML keys and flag names.
_SETTERS: dict[str, _Setter] = {
    "data": lambda s, v, where, base: setattr(s, "data", _path(v, where, base)),
    "maildir_root": lambda s, v, where, base: setattr(s, "maildir_root", _path(v, where, base)),
    "listen": _set_listen,
    "workers": _set_workers,
    "backend": lambda s, v, where, base: setattr(
        s, "backend", _want(v, str, where, "a backend name")
    ),
    "backend_options": lambda s, v, where, base: setattr(
        s, "backend_options", dict(_want(v, dict, where, "a table"))
    ),
    "smtp_relay": _set_smtp_relay,
    "smtp_starttls": lambda s, v, where, base: setattr(
        s, "smtp_starttls", _want(v, bool, where, "true or false")
    ),
    "smtp_username": lambda s, v, where, base: setattr(
        s, "smtp_username", _want(v, str, where, "a string")
    ),
    "smtp_password": lambda s, v, where, base: setattr(
        s, "smtp_password", _want(v, str, where, "a string")
    ),
    "lmtp_listen": _set_lmtp_listen,
    "lmtp_max_size": _set_lmtp_max_size,
    "lmtp_hostname": lambda s, v, where, base: setattr(
        s, "lmtp_hostname", _want(v, str, where, "a host name")
    ),
    "lmtp_name_match": lambda s, v, where, base: setattr(
        s, "lmtp_name_match", _want(v, bool, where, "true or false")
    ),
    "log_level": _set_log_level,
    "base_url": _set_base_url,
    "trust_forwarded": lambda s, v, where, base: setattr(
        s, "trust_forwarded", _want(v, bool, where, "true or false")
    ),
    "limits": _set_limits,
    "plugins": _set_plugins,
    "tls_cert": _readable_file("tls_cert"),
    "tls_key": _readable_file("tls_key"),
    "push_allow_private": lambda s, v, where, base: setattr(
        s, "push_allow_private", _want(v, bool, where, "true or false")
    ),
    "push_allow": _set_push_allow,
    "push_allow_http": lambda s, v, where, base: setattr(
        s, "push_allow_http", _want(v, bool, where, "true or false")
    ),
}


def apply(settings: Settings, values: Mapping[str, Any], base: Path, origin: str) -> None:
    """Set ``values`` (from the file or the flags) on ``settings``, checking each one.

    Relative paths are relative to ``base``: the config file's directory for
    the file, the working directory for flags.  Unknown keys are errors, so
    a typo in the file does not silently fall back to a default.
    """
    for key, value in values.items():
        if value is None:
            continue
        setter = _SETTERS.get(key)
        if setter is None:
            raise ConfigError(f"{origin}: unknown setting {key!r} (known: {', '.join(_SETTERS)})")
        setter(settings, value, f"{origin}: {key}", base)


def load_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as ex:
        raise ConfigError(f"cannot read config file {path}: {ex.strerror}") from None
    except tomllib.TOMLDecodeError as ex:
        raise ConfigError(f"config file {path} is not valid TOML: {ex}") from None


def load_settings(
    config_file: Path | None, flags: Mapping[str, Any], cwd: Path | None = None
) -> Settings:
    """Defaults, overridden by ``config_file``, overridden by ``flags`` (None = not given)."""
    settings = Settings()
    if config_file is not None:
        apply(settings, load_file(config_file), config_file.resolve().parent, str(config_file))
    apply(settings, flags, cwd or Path.cwd(), "command line")
    check_tls_pair(settings)
    return settings
