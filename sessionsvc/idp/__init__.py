"""Revocation from identity providers: OpenID Connect Back-Channel Logout and Shared Signals
(CAEP). Trust configuration (``trust``), issuers' keys (``keys``), the verified forms of their
tokens (``model``), their verification (``logout_token``, ``secevent``) and RFC 9493 subjects
(``subjects``)."""
