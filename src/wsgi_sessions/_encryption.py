"""Sealing a cookie session: AES-256-GCM under keys derived from the secret keys.

What an encrypted session cookie is (URL-safe base64 without padding)::

    version (1 byte) | key id (4) | nonce (12) | ciphertext | tag (16)

and inside the ciphertext::

    issued at (8 bytes, epoch seconds) | format (1: 0 = JSON, 1 = zlib JSON) | payload

- Keys: HKDF-SHA256 of each secret key with a purpose label gives 36 bytes,
  the AES key (32) and the key id (4). The secret key is never used raw, and
  no key here is ever a signing key (those come from itsdangerous's own
  derivation, under other labels).
- The key id picks the one key to try, so a token costs one decryption
  whatever the number of fallback keys.
- Associated data: the version, the key id and the cookie's name. A token
  moved into a cookie of another name (or another app's cookie with the same
  secret key and another name) does not open.
- The nonce is 96 random bits per token, as NIST SP 800-38D allows: the
  chance that two tokens under one key share a nonce stays below 2**-32 for
  the first 2**32 tokens sealed under it (it grows as n**2 / 2**97). A site
  writing 100 session cookies a second reaches 2**32 in 16 months; rotating
  the secret key (the old one into the fallbacks) starts the count anew.
- The issue time is inside, so nothing of the payload, nor when it was
  written, can be read from the cookie; only its length shows.
"""

from __future__ import annotations

import os
import struct
import time
import typing as t
import zlib
from functools import lru_cache

from ._signing import MAX_PAYLOAD_SIZE, _b64decode, _b64encode, is_canonical_signature

if t.TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CookieSealer", "make_sealer", "require_cryptography"]

VERSION = 1
_HEADER = 1 + 4  # version, key id
_NONCE = 12
_TAG = 16
_INNER = struct.Struct(">QB")  # issued at, format
_JSON, _ZLIB_JSON = 0, 1
#: The shortest token that can hold a sealed payload (an empty one).
_MIN_SIZE = _HEADER + _NONCE + _INNER.size + _TAG
#: Base64 characters that spell the version and the key id (6 bytes: the
#: header and the nonce's first byte).
_HEADER_CHARS = 8

INSTALL_HINT = (
    "encrypted cookie sessions need the 'cryptography' package: "
    "pip install 'wsgi-sessions[encryption]'"
)


def require_cryptography() -> None:
    """Fail at start-up, with what to install, where ``cryptography`` is missing."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401
    except ImportError as exc:
        raise ValueError(INSTALL_HINT) from exc


def derive_key(secret_key: str | bytes, purpose: bytes) -> tuple[bytes, bytes]:
    """The (key id, AES-256 key) that ``secret_key`` gives for ``purpose``."""
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    secret = secret_key.encode("utf-8") if isinstance(secret_key, str) else secret_key
    material = HKDF(algorithm=SHA256(), length=36, salt=None, info=purpose).derive(secret)
    return material[32:], material[:32]


class CookieSealer:
    """Seal and open session payloads for one configuration (key set, purpose).

    Built once per configuration (:func:`make_sealer`), then shared by every
    request and thread: it keeps no per-request state.
    """

    def __init__(
        self,
        secret_keys: tuple[str | bytes, ...],
        purpose: bytes,
        max_payload_size: int = MAX_PAYLOAD_SIZE,
        compress_min_size: int | None = None,
    ) -> None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._invalid_tag = InvalidTag
        self.max_payload_size = max_payload_size
        self.compress_min_size = compress_min_size
        #: key id -> the keys that have it, the current key first. Two keys
        #: share an id once in 2**32 pairs: then both are tried.
        self._keys: dict[bytes, list[AESGCM]] = {}
        for secret_key in dict.fromkeys(secret_keys):  # a key listed twice is tried once
            key_id, key = derive_key(secret_key, purpose)
            self._keys.setdefault(key_id, []).append(AESGCM(key))
        current_id, _ = derive_key(secret_keys[0], purpose)
        self._current = self._keys[current_id][0]
        self._header = bytes([VERSION]) + current_id
        self._current_id = current_id

    def seal(self, payload: bytes, name: str, now: int | None = None) -> str:
        """The cookie value of ``payload`` (JSON) for the cookie called ``name``."""
        fmt = _JSON
        threshold = self.compress_min_size
        if threshold is not None and len(payload) >= threshold:
            compressor = zlib.compressobj(6, zlib.DEFLATED, 12, 5)  # a cookie's size: 4 KB window
            compressed = compressor.compress(payload) + compressor.flush()
            if len(compressed) < len(payload):
                payload, fmt = compressed, _ZLIB_JSON
        issued = int(time.time()) if now is None else now
        header = self._header
        nonce = os.urandom(_NONCE)
        plaintext = _INNER.pack(issued, fmt) + payload
        sealed = self._current.encrypt(nonce, plaintext, header + name.encode("utf-8"))
        return _b64encode(header + nonce + sealed).decode("ascii")

    def open(self, token: str, name: str, max_age: int, now: int | None = None) -> bytes | None:
        """The JSON sealed in ``token`` for the cookie ``name``, or None: not
        ours, altered, sealed for another name, under a key we do not hold,
        older than ``max_age`` seconds, or expanding past the payload bound."""
        # One spelling only: a lenient decoder would read respellings (other
        # unused low bits, characters outside the alphabet) as the same bytes.
        if len(token) < _MIN_SIZE or not is_canonical_signature(token) or "." in token:
            return None
        try:
            raw = _b64decode(token.encode("ascii"))
        except ValueError:
            return None
        if len(raw) < _MIN_SIZE or raw[0] != VERSION:
            return None
        header = raw[:_HEADER]
        keys = self._keys.get(raw[1:_HEADER])
        if keys is None:
            return None
        nonce, sealed = raw[_HEADER : _HEADER + _NONCE], raw[_HEADER + _NONCE :]
        associated = header + name.encode("utf-8")
        for key in keys:
            try:
                plaintext = key.decrypt(nonce, sealed, associated)
                break
            except self._invalid_tag:
                continue
        else:
            return None
        issued, fmt = _INNER.unpack_from(plaintext)
        age = (int(time.time()) if now is None else now) - issued
        if not 0 <= age <= max_age:  # expired, or from the future: as itsdangerous
            return None
        payload = plaintext[_INNER.size :]
        if fmt == _JSON:
            return payload
        if fmt != _ZLIB_JSON:
            return None
        return self._decompress(payload)

    def _decompress(self, payload: bytes) -> bytes | None:
        """Bounded, as for signed cookies: at most one byte past the bound is produced."""
        limit = self.max_payload_size
        decompressor = zlib.decompressobj()
        try:
            data = decompressor.decompress(payload, limit + 1)
        except zlib.error:
            return None
        if len(data) > limit or not decompressor.eof:
            return None
        return data

    def is_current(self, token: str) -> bool:
        """Whether ``token`` names the current key (read from its clear header)."""
        try:
            head = _b64decode(token[:_HEADER_CHARS].encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return False
        return head[1:_HEADER] == self._current_id


# Cached per configuration: the HKDF and the cipher objects cost tens of µs.
@lru_cache(maxsize=32)
def make_sealer(
    secret_keys: tuple[str | bytes, ...],
    purpose: bytes,
    max_payload_size: int = MAX_PAYLOAD_SIZE,
    compress_min_size: int | None = None,
) -> CookieSealer:
    """The sealer for ``secret_keys`` (the current key first, then the fallbacks)."""
    return CookieSealer(secret_keys, purpose, max_payload_size, compress_min_size)
