"""``ServerTLS``: the TLS files of a throw-away ``RedisProcess`` (tests, benchmarks).

With it the server listens with TLS only (``--port 0 --tls-port <port>``), so every client
must speak TLS to reach it, and ``RedisProcess.url`` is a ``rediss://`` URL. The files are the
caller's (``tests/tls_harness.py`` makes a throw-away CA): nothing here creates key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["ServerTLS"]


@dataclass(frozen=True)
class ServerTLS:
    """The server's certificate and key, the CA it trusts for client certificates, whether it
    demands one (``auth_clients``: ``no``, ``optional``, ``yes``), and the client certificate
    and key its own readiness PING presents (needed when ``auth_clients`` is ``yes``)."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    auth_clients: Literal["no", "optional", "yes"] = "no"
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    def server_args(self, port: int) -> list[str]:
        """redis-server arguments: no plain port, TLS on ``port`` with these files."""
        return [
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(self.cert_file),
            "--tls-key-file",
            str(self.key_file),
            "--tls-ca-cert-file",
            str(self.ca_file),
            "--tls-auth-clients",
            self.auth_clients,
        ]

    def client_options(self) -> dict[str, object]:
        """redis-py keywords of a verifying TLS client of this server (``redis.Redis(ssl=True,
        **…)``, or ``redis.Redis.from_url(<rediss:// url>, **…)``)."""
        cert, key = self.client_cert_file, self.client_key_file
        return {
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_ca_certs": str(self.ca_file),
            "ssl_certfile": None if cert is None else str(cert),
            "ssl_keyfile": None if key is None else str(key),
        }
