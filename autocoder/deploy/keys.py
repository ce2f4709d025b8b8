"""Signing keys: ECDSA P-256, as cosign uses them.

A key comes from AUTOCODER_SIGNING_KEY: the path of a PEM file, either an unencrypted PKCS#8
or EC private key, or cosign's own `ENCRYPTED SIGSTORE PRIVATE KEY` (scrypt + NaCl secretbox
over PKCS#8 DER, password in COSIGN_PASSWORD), which `autocoder keygen` also writes. Without
it, a development key is created once per project, with a loud warning.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

KEY_ENV = "AUTOCODER_SIGNING_KEY"
PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the variable's name
COSIGN_LABEL = "ENCRYPTED SIGSTORE PRIVATE KEY"
# cosign's parameters (sigstore/cosign pkg/cosign/keys.go via secure-systems-lab encrypted)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 65536, 8, 1
DEV_KEY = "generated/.autocoder/dev-signing-key.pem"


class SigningKeyError(Exception):
    """The signing key cannot be read; the message says which file and what to do."""


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def encrypt_cosign(key: ec.EllipticCurvePrivateKey, password: bytes) -> bytes:
    """The PEM cosign generate-key-pair writes, for this key and password."""
    import nacl.secret
    import nacl.utils

    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt = nacl.utils.random(32)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))
    ciphertext = box.encrypt(der, nonce).ciphertext
    body = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return _pem(COSIGN_LABEL, json.dumps(body, separators=(",", ":")).encode())


def _pem(label: str, data: bytes) -> bytes:
    text = base64.b64encode(data).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()


def decrypt_cosign(pem: bytes, password: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    import nacl.exceptions
    import nacl.secret

    try:
        body = b"".join(line for line in pem.strip().splitlines() if not line.startswith(b"-----"))
        data = json.loads(base64.b64decode(body))
        kdf, cipher = data["kdf"], data["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise SigningKeyError(f"{where}: unsupported key encryption {kdf['name']}/{cipher['name']}")
        params = kdf["params"]
        secret = _scrypt(
            password, base64.b64decode(kdf["salt"]), int(params["N"]), int(params["r"]), int(params["p"])
        )
        der = nacl.secret.SecretBox(secret).decrypt(
            base64.b64decode(data["ciphertext"]), base64.b64decode(cipher["nonce"])
        )
    except nacl.exceptions.CryptoError:
        raise SigningKeyError(f"{where}: wrong password (set {PASSWORD_ENV} to the key's password)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningKeyError(f"{where}: not a readable cosign key ({exc})") from None
    key = serialization.load_der_private_key(der, password=None)
    return _p256(key, where)


def _p256(key: object, where: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningKeyError(
            f"{where}: the key must be ECDSA P-256 (cosign's kind); make one with `autocoder keygen`"
        )
    return key


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    where = str(path)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{where}: cannot read the signing key ({exc.strerror or exc})") from None
    if COSIGN_LABEL.encode() in pem:
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            raise SigningKeyError(f"{where} is an encrypted cosign key: set {PASSWORD_ENV} to its password")
        return decrypt_cosign(pem, password.encode(), where)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(
            f"{where}: not an unencrypted PEM private key nor a cosign key ({exc})"
        ) from None
    return _p256(key, where)


def signing_key(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """The key to sign with and where it came from (a dev key is made once, with a warning)."""
    given = os.environ.get(KEY_ENV)
    if given:
        return load_private_key(Path(given)), given
    path = directory / DEV_KEY
    print(
        "WARNING: AUTOCODER_SIGNING_KEY is not set: signing with a DEVELOPMENT key "
        f"({DEV_KEY}), made on this machine. Nobody else can trust this signature. "
        "For a release run `autocoder keygen` and set AUTOCODER_SIGNING_KEY and COSIGN_PASSWORD.",
        file=sys.stderr,
    )
    if not path.exists():
        from autocoder.fsutil import atomic_write, confined

        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        target = confined(directory, Path(DEV_KEY))
        atomic_write(target, pem)
        target.chmod(0o600)
    return load_private_key(path), DEV_KEY


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """DER ECDSA signature over SHA-256(data): what cosign sign-blob base64-encodes."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify(public: bytes, signature: bytes, data: bytes) -> bool:
    key = serialization.load_pem_public_key(public)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def keygen(prefix: Path, password: str) -> tuple[Path, Path]:
    """<prefix>.key (cosign's encrypted format) and <prefix>.pub, like cosign generate-key-pair."""
    from autocoder.fsutil import atomic_write

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for path in (private, public):
        if path.exists():
            raise SigningKeyError(f"{path} exists; refusing to overwrite a key (move it away first)")
    atomic_write(private, encrypt_cosign(key, password.encode()))
    private.chmod(0o600)
    atomic_write(public, public_pem(key))
    return private, public
