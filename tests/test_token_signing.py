"""Tokens are signed with the key SimpleJWT prepared once (accounts.token_signing): the same tokens as
PyJWT's own handler makes, and any other key still gets PyJWT's checks."""

import jwt
import pytest
from django.conf import settings
from jwt.exceptions import InvalidKeyError
from rest_framework_simplejwt.state import token_backend

from accounts.token_signing import PreparedKeyHMAC

pytestmark = pytest.mark.django_db

PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"


def test_sign_in_tokens_are_what_pyjwt_itself_signs_and_verifies(sign_in, api):
    tokens = sign_in()

    assert isinstance(jwt.api_jws._jws_global_obj._algorithms["HS256"], PreparedKeyHMAC)
    for kind in ("access", "refresh"):
        claims = jwt.decode(tokens[kind], settings.JWT_SIGNING_KEY, algorithms=["HS256"])
        standard = jwt.PyJWS()  # PyJWT's own handlers, checking the key as it always does
        header = jwt.get_unverified_header(tokens[kind])
        payload = tokens[kind].split(".")[1]
        resigned = standard.encode(jwt.utils.base64url_decode(payload), settings.JWT_SIGNING_KEY, algorithm="HS256")
        assert (claims["token_type"], header["alg"], resigned) == (kind, "HS256", tokens[kind])

    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert response.status_code == 200


def test_another_key_still_gets_pyjwts_checks():
    assert token_backend.prepared_signing_key != PUBLIC_KEY.encode()
    with pytest.raises(InvalidKeyError):
        jwt.encode({"sub": "1"}, PUBLIC_KEY, algorithm="HS256")
    with pytest.raises(InvalidKeyError):
        jwt.encode({"sub": "1"}, "", algorithm="HS256")


def test_a_token_signed_with_another_key_is_refused(api, make_user):
    token = jwt.encode(
        {"token_type": "access", "exp": 4102444800, "jti": "a" * 32, "user_id": str(make_user().pk)},
        "another key, long enough to be a key of its own",
        algorithm="HS256",
    )

    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert (response.status_code, response.json()["code"]) == (401, "token_not_valid")
