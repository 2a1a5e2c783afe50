"""Revocation from identity providers: OpenID Connect Back-Channel Logout and Shared Signals
(CAEP). Trust configuration (``trust``), issuers' keys (``keys``, judged by ``jwks``), the
signature layer and shared claims rules (``jws``, ``claims``), the verified forms of their
tokens (``model``), their verification (``logout_token``, ``secevent``), RFC 9493 subjects
(``subjects``) and local users (``mapping``)."""
