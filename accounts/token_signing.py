"""Tokens signed and verified with the key SimpleJWT prepared once, instead of one PyJWT checks for every token.

PyJWT checks an HMAC key each time it signs or verifies with it (does it look like a PEM, SSH or
DER key, or like JSON?): in a sign-in, 58 of the 270 us that issuing the pair took
(docs/benchmarks.md). SimpleJWT prepares its key once (TokenBackend.prepared_signing_key, which
PyJWT checked then) and passes that same object with every token; the algorithm registered here
takes that object as it is and checks any other key as PyJWT does.
"""

import jwt
from jwt.algorithms import HMACAlgorithm
from rest_framework_simplejwt.state import token_backend

HMAC_HASHES = {"HS256": HMACAlgorithm.SHA256, "HS384": HMACAlgorithm.SHA384, "HS512": HMACAlgorithm.SHA512}


class PreparedKeyHMAC(HMACAlgorithm):
    def __init__(self, hash_alg, prepared_key: bytes):
        super().__init__(hash_alg)
        self.prepared_key = prepared_key

    def prepare_key(self, key):
        return key if key is self.prepared_key else super().prepare_key(key)


def register() -> None:
    """Replace PyJWT's handler of SimpleJWT's algorithm, if that is an HMAC one (it is, unless set otherwise)."""
    algorithm = token_backend.algorithm
    if algorithm not in HMAC_HASHES:
        return
    jwt.unregister_algorithm(algorithm)
    jwt.register_algorithm(algorithm, PreparedKeyHMAC(HMAC_HASHES[algorithm], token_backend.prepared_signing_key))
