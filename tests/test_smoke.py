from sessionsvc import TokenIssuer, TokenRejected, Validator
from sessionsvc.revocation.view import Revocation


def test_issue_validate_revoke(issuer: TokenIssuer, validator: Validator) -> None:
    pair = issuer.issue("alice")
    assert validator.validate(pair.access_token)["sub"] == "alice"
    validator.revoke(Revocation("session", pair.session_id, until=2e9))
    try:
        validator.validate(pair.access_token)
    except TokenRejected as exc:
        assert exc.reason == "revoked"
    else:
        raise AssertionError("revoked token accepted")
