"""One rule for the credentials of every service curate talks to (Argilla, OpenAI-compatible servers).

A key comes only from its documented environment variable (or ``--api-key`` on the command
line), never from a variable a pipeline file names, and it is sent only to the URL configured
beside it: the command line's URL, else the URL variable, else the service's local default.
A URL written in a pipeline file is used as written, but when it differs from that configured
URL (compared by scheme, host, port and path, without a trailing slash) it gets no key, and
:attr:`Credentials.note` says so, naming the URL and never the key. Running someone else's
pipeline file therefore cannot send your secrets to a host of its choosing.

Library code never reads ``os.environ``: the caller passes the environment in (the CLI passes
``os.environ``; stages get it as ``StageContext.env``).

Example
-------
>>> env = {"ARGILLA_API_URL": "http://127.0.0.1:6900", "ARGILLA_API_KEY": "owner.key"}
>>> Credentials.resolve("argilla", env=env).key
'owner.key'
>>> creds = Credentials.resolve("argilla", url_from_file="http://example.org:6900", env=env)
>>> creds.url, creds.key
('http://example.org:6900', None)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from curate.errors import ConfigError

__all__ = ["SERVICES", "Credentials", "Service", "flag_warning", "same_url"]

ServiceName = Literal["argilla", "openai"]


@dataclass(frozen=True)
class Service:
    """A service curate connects to: its display name, its two variables and its local default URL."""

    title: str
    url_var: str
    key_var: str
    default_url: str | None  # trusted only when ``url_var`` is unset; None: no default


SERVICES: dict[str, Service] = {
    "argilla": Service("Argilla", "ARGILLA_API_URL", "ARGILLA_API_KEY", "http://127.0.0.1:6900"),
    "openai": Service("OpenAI-compatible server", "OPENAI_BASE_URL", "OPENAI_API_KEY", None),
}


def _normalised(url: str) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, path) with default ports filled in; None when ``url`` does not parse."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    port = port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def same_url(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same endpoint (scheme, host, port, path; no trailing slash)."""
    na = _normalised(a)
    return na is not None and na == _normalised(b)


@dataclass(frozen=True)
class Credentials:
    """The URL to call and the key to send there (None: send no key).

    Attributes
    ----------
    service
        The service's table entry (variables, display name).
    url
        Where to connect.
    key
        The API key to send to ``url``; ``None`` when there is none or it is withheld from ``url``.
    url_from
        Where ``url`` came from, for messages: ``the command line``, ``the pipeline file``,
        the URL variable's name, or ``the default``.
    note
        Set when a key exists but is withheld because ``url`` came from the pipeline file and
        is not the configured URL: one sentence naming both URLs and the variable, never the key.
        Callers that go on without a key log it once.
    """

    service: Service
    url: str
    key: str | None = field(repr=False)
    url_from: str
    note: str | None = None

    @classmethod
    def resolve(
        cls,
        service: ServiceName,
        *,
        env: Mapping[str, str],
        url_from_file: str | None = None,
        url_from_cli: str | None = None,
        key_from_cli: str | None = None,
    ) -> Credentials:
        """Pick the URL (command line, else pipeline file, else variable, else default) and the key for it.

        Parameters
        ----------
        service
            ``argilla`` or ``openai`` (see :data:`SERVICES`).
        env
            The environment to read the service's two variables from (the CLI passes ``os.environ``).
        url_from_file
            The URL a pipeline file wrote; ``None`` when it wrote none.
        url_from_cli
            The URL given on the command line; ``None`` when none was given.
        key_from_cli
            A key given on the command line (``--api-key``); ``None`` reads the key variable.

        Raises
        ------
        ConfigError
            No URL anywhere and the service has no default.
        """
        spec = SERVICES[service]
        env_url = env.get(spec.url_var) or None
        trusted, trusted_from = (
            (url_from_cli, "the command line") if url_from_cli else
            (env_url, spec.url_var) if env_url else
            (spec.default_url, "the default")
        )  # fmt: skip
        from_file = url_from_file and not url_from_cli
        url, url_from = (url_from_file, "the pipeline file") if from_file else (trusted, trusted_from)
        if url is None:
            raise ConfigError(
                f"No {spec.title} URL: set {spec.url_var}, pass one on the command line, "
                "or write one in the pipeline file."
            )
        key = key_from_cli or env.get(spec.key_var) or None
        if key is None or (trusted is not None and same_url(url, trusted)):
            return cls(service=spec, url=url, key=key, url_from=url_from)
        configured = (
            f"{spec.url_var} ({trusted})" if trusted_from == spec.url_var else
            f"the default ({trusted}; {spec.url_var} is unset)" if trusted else f"{spec.url_var} (unset)"
        )  # fmt: skip
        note = (
            f"{spec.title} URL {url} comes from the pipeline file and is not {configured}: the API key in "
            f"{spec.key_var} is not sent there. If you trust that server, set {spec.url_var}={url}."
        )
        return cls(service=spec, url=url, key=None, url_from=url_from, note=note)


def flag_warning(flag: str, variable: str) -> str:
    """The warning for a secret given as a command-line flag (other users see argv in ``ps``)."""
    return f"{flag} is visible to other users in process lists (ps); prefer setting {variable} in the environment."
