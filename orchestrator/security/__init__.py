"""orchestrator.security: pure security primitives (no tables, no HTTP).

::

    keys.py       Keys (data keys by id + active id, code key, purpose subkeys); load_or_create_keys
    crypto.py     PersonalDataCipher: AES-256-GCM blobs with key rotation; hmac_phone for lookups
    masking.py    normalise_phone, mask_phone ("138****1234"), mask_name ("张*", "J*********")
    signing.py    partner request signatures (X-Robopost-* headers); SignatureVerifier (skew, replay)
    codes.py      pickup codes: CodeBook (issue, per-cart keys, hashes), CodeGuard (lockout, step-up,
                  daily budget), guess_success_probability
    passwords.py  argon2id operator passwords, dummy_verify for unknown users
    tokens.py     session tokens (stored as hashes), CSRF double-submit tokens, cart API tokens

Errors: ``orchestrator.security.errors`` (``SecurityError`` and its subclasses).
"""

from orchestrator.security.codes import (
    CODE_DIGITS,
    CODE_SPACE,
    Challenge,
    CodeBook,
    CodeGuard,
    ScreenStatus,
    guess_success_probability,
    hash_code,
    parse_code,
    phone_tail,
)
from orchestrator.security.crypto import PersonalDataCipher, key_id_of
from orchestrator.security.errors import (
    BadSignature,
    CodeSpaceExhausted,
    DecryptionError,
    InvalidCode,
    InvalidPhone,
    KeyConfigError,
    Locked,
    MalformedRequest,
    PasswordHashError,
    ReplayedNonce,
    SecurityError,
    SignatureError,
    StaleTimestamp,
    TooManyRequests,
    UnknownKeyError,
    UnknownPartner,
)
from orchestrator.security.keys import Keys, load_or_create_keys, new_key
from orchestrator.security.masking import mask_name, mask_phone, normalise_phone
from orchestrator.security.passwords import (
    PasswordHashing,
    dummy_verify,
    hash_password,
    needs_rehash,
    verify_password,
)
from orchestrator.security.signing import (
    NONCE_HEADER,
    PARTNER_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_HEADERS,
    TIMESTAMP_HEADER,
    SignatureVerifier,
    canonical,
    sign,
)
from orchestrator.security.tokens import check_cart_token, check_csrf, csrf_token, new_token, token_hash

__all__ = [
    "CODE_DIGITS",
    "CODE_SPACE",
    "NONCE_HEADER",
    "PARTNER_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_HEADERS",
    "TIMESTAMP_HEADER",
    "BadSignature",
    "Challenge",
    "CodeBook",
    "CodeGuard",
    "CodeSpaceExhausted",
    "DecryptionError",
    "InvalidCode",
    "InvalidPhone",
    "KeyConfigError",
    "Keys",
    "Locked",
    "MalformedRequest",
    "PasswordHashError",
    "PasswordHashing",
    "PersonalDataCipher",
    "ReplayedNonce",
    "ScreenStatus",
    "SecurityError",
    "SignatureError",
    "SignatureVerifier",
    "StaleTimestamp",
    "TooManyRequests",
    "UnknownKeyError",
    "UnknownPartner",
    "canonical",
    "check_cart_token",
    "check_csrf",
    "csrf_token",
    "dummy_verify",
    "guess_success_probability",
    "hash_code",
    "hash_password",
    "key_id_of",
    "load_or_create_keys",
    "mask_name",
    "mask_phone",
    "needs_rehash",
    "new_key",
    "new_token",
    "normalise_phone",
    "parse_code",
    "phone_tail",
    "sign",
    "token_hash",
    "verify_password",
]
