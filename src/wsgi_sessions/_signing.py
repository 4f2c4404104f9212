"""Every signer, serializer and key derivation, and the one signature check.

Whatever signed value we read (a cookie session, a server-side session id,
a cookie given to ``wsgi-sessions inspect``) is verified here, by the same
strict rules: the signature must be spelled exactly as we write it, and a
compressed payload may not expand past a bound.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import typing as t
import zlib
from binascii import a2b_base64, b2a_base64
from functools import lru_cache

from itsdangerous import BadPayload, BadSignature, Signer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import int_to_bytes, want_bytes
from itsdangerous.signer import HMACAlgorithm, SigningAlgorithm
from itsdangerous.url_safe import URLSafeSerializerMixin

__all__ = [
    "COMPRESS_MIN_SIZE",
    "MAX_PAYLOAD_SIZE",
    "DerivedKeySerializer",
    "StrictSigner",
    "is_canonical_signature",
    "lazy_sha1",
    "make_signing_serializer",
    "may_be_permanent",
]

# The signature of a token we issue: URL-safe base64 without padding. Its last
# character has low bits that decoders ignore (4 of them when len % 4 == 2, 2
# when len % 4 == 3); we always write them as zero.
_SIGNATURE = re.compile(r"[-\w]+", re.ASCII)
_BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CANONICAL_LAST = {0: _BASE64_ALPHABET, 2: _BASE64_ALPHABET[::16], 3: _BASE64_ALPHABET[::4]}
_NOT_CANONICAL = "signature not in canonical base64"

#: How many bytes a compressed payload may expand to. A 4 KB cookie of
#: ordinary JSON holds a few times that at most; zeros would give a thousand
#: times more (megabytes), decoded on every request without a bound.
MAX_PAYLOAD_SIZE = 64 * 1024

#: JSON shorter than this is not offered to zlib. Measured on random realistic
#: sessions (ids, names, tokens, lists, dates; 40,000 samples): below 80 bytes
#: zlib shrinks at most 5% of them, by a median of 2 bytes, and never below
#: 16; each attempt costs 3-4 µs. From 128 bytes on it shrinks them all.
COMPRESS_MIN_SIZE = 80


def is_canonical_signature(value: str | bytes) -> bool:
    """Whether the token's signature is spelled exactly as itsdangerous writes it.

    itsdangerous decodes a signature leniently (it skips characters outside the
    base64 alphabet and ignores the unused bits of the last one), so "sig",
    "s::ig" and "sif" could all verify: a cookie altered by a client would be
    accepted as the one we issued. Checking the spelling costs far less than
    the HMAC it precedes.
    """
    if not isinstance(value, str):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return False
    start = value.rfind(".") + 1
    last = _CANONICAL_LAST.get((len(value) - start) % 4)
    return (
        bool(value)
        and last is not None
        and value[-1] in last
        and _SIGNATURE.fullmatch(value, start) is not None
    )


def may_be_permanent(token: str) -> bool:
    """False only when the token's payload certainly has no ``_permanent`` key.

    Read without verifying, so only ever used to skip work: a payload whose
    JSON lacks the text ``"_permanent"`` cannot hold the key (JSON writers
    spell keys plainly; a hand-escaped ``\\u005f`` would only miss a refresh).
    The base64 text is searched, not decoded (see :data:`_PERMANENT_IN_BASE64`):
    a valid cookie the page never uses costs 0.15 µs here instead of 1.5. A
    compressed payload may hold anything: True (the serializer's
    :meth:`DerivedKeySerializer.may_be_permanent` looks inside).
    """
    end = token.find(".")
    if end <= 0:  # compressed ("." first) or not a token
        return True
    payload = token[:end]
    at_0, at_1, at_2 = _PERMANENT_IN_BASE64  # spelled out: any() over them costs 5x
    return at_0 in payload or at_1 in payload or at_2 in payload


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")  # by length % 4 (1 is never valid base64)


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64encode(data: bytes) -> bytes:
    """itsdangerous's ``base64_encode`` (URL-safe, no padding) in one C call and two
    byte operations instead of its layers of conversions."""
    return b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def _base64_within(text: bytes) -> tuple[str, ...]:
    """What URL-safe base64 text must contain wherever ``text`` occurs in the
    bytes it encodes, one string per alignment (``text`` starting 0, 1 or 2
    bytes into a 3-byte group): every character whose 6 bits all come from
    ``text`` is the same wherever the text sits at that alignment."""
    within = []
    for lead in range(3):
        padded = bytes(lead) + text
        encoded = _b64encode(padded + bytes(-len(padded) % 3)).decode("ascii")
        first = -(-lead * 8 // 6)  # the first character with no bit before the text
        end = len(padded) * 8 // 6  # past the last one with no bit after it
        within.append(encoded[first:end])
    return tuple(within)


#: The JSON key ``"_permanent"`` as it appears in a base64 payload, at each alignment.
_PERMANENT_IN_BASE64 = _base64_within(b'"_permanent"')


def _b64decode(text: bytes) -> bytes:
    """URL-safe base64 without padding, in a third of the time of
    :func:`base64.urlsafe_b64decode`'s layers (a ValueError if it is not base64)."""
    return a2b_base64(text.translate(_FROM_URLSAFE) + _PADDING[len(text) % 4])


def _one_shot_digest(algorithm: SigningAlgorithm, key: bytes) -> t.Any:
    """The hash with which one ``hmac.digest`` call gives ``algorithm``'s own
    signatures, or None. Plain HMAC only (a subclass of HMACAlgorithm may
    sign otherwise), and checked once: a hash that ``hmac.digest`` takes
    differently from ``hmac.new`` (not one of hashlib's) leaves the
    algorithm to sign, and to raise its own error."""
    if type(algorithm) is not HMACAlgorithm:
        return None
    digest = algorithm.digest_method
    try:
        same = hmac.digest(key, b"probe", digest) == algorithm.get_signature(key, b"probe")
    except Exception:
        return None
    return digest if same else None


class _DerivedKeys:
    """A signer's keys, derived once, and its signature made in one call.

    itsdangerous derives the key again on every sign and verify, decodes the
    signature from base64, and builds an ``hmac`` object per key tried. Here
    the keys are derived at construction, the HMAC is one ``hmac.digest``
    call (where the algorithm is plain HMAC; another signs its own way), and
    a signature is checked by comparing it as text with the one we would
    write. Shared by :class:`DerivedKeySerializer` and :class:`StrictSigner`.
    """

    __slots__ = ("_algorithm", "_digest", "signing_key", "verifying_keys")

    def __init__(self, signer: Signer) -> None:
        self._algorithm = signer.algorithm
        self.signing_key = signer.derive_key()
        # Newest first: the order in which itsdangerous tries them.
        self.verifying_keys = tuple(signer.derive_key(key) for key in reversed(signer.secret_keys))
        self._digest = _one_shot_digest(signer.algorithm, self.signing_key)

    @property
    def one_shot(self) -> bool:
        """Whether a signature is one ``hmac.digest`` call (plain HMAC)."""
        return self._digest is not None

    def _mac(self, key: bytes, value: bytes) -> bytes:
        digest = self._digest
        if digest is None:
            return self._algorithm.get_signature(key, value)
        return hmac.digest(key, value, digest)

    def sign(self, value: bytes) -> bytes:
        """The signature of ``value`` under the current key, as itsdangerous
        writes it (URL-safe base64 without padding)."""
        return _b64encode(self._mac(self.signing_key, value))

    def verify(self, value: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is the one we would write for ``value`` under a
        key. Compared as text, so it is also the canonical-spelling check: a
        respelled signature (which itsdangerous's decoder would accept) is no match."""
        for key in self.verifying_keys:
            if hmac.compare_digest(_b64encode(self._mac(key, value)), signature):
                return True
        return False


class StrictSigner(Signer):
    """An itsdangerous :class:`~itsdangerous.Signer` that refuses any spelling
    of a signature but the one it writes (see :func:`is_canonical_signature`).
    Its separator must be the default ``.``.

    With plain HMAC (what we use), its keys are derived once, here, and a
    token is verified with one ``hmac.digest`` per key tried (see
    :class:`_DerivedKeys`). A token that way does not accept goes
    itsdangerous's own way (:meth:`_unsign_plain`), so every refusal is its
    exact error (``tests/test_fast_paths.py`` holds the two ways to each other).
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._keys: _DerivedKeys | None = None  # None: itsdangerous's way only
        if self.sep == b".":
            # A key that cannot be derived (no key, an unknown key derivation)
            # is an error itsdangerous raises at use, not here: its way will.
            with contextlib.suppress(Exception):
                keys = _DerivedKeys(self)
                if keys.one_shot:  # another algorithm may verify otherwise than by equality
                    self._keys = keys

    def sign(self, value: str | bytes) -> bytes:
        # python bench/signer.py (CPU, best of 15): 2.4-2.5 µs; Signer.sign 2.6-2.7.
        keys = self._keys
        if keys is None:
            return super().sign(value)
        value = want_bytes(value)
        return value + b"." + keys.sign(value)

    def unsign(self, signed_value: str | bytes) -> bytes:
        # python bench/signer.py (CPU, best of 15): 2.5-2.7 µs; _unsign_plain (old way) 4.5-4.9.
        keys = self._keys
        if keys is not None and signed_value.isascii():  # as every token we issue
            value, found, signature = want_bytes(signed_value).rpartition(b".")
            if found and keys.verify(value, signature):
                return value
        return self._unsign_plain(signed_value)

    def _unsign_plain(self, signed_value: str | bytes) -> bytes:
        """itsdangerous's own way, for its exact errors, refusing as well any
        signature it accepts that is not spelled as we write it."""
        if not is_canonical_signature(signed_value):
            raise BadSignature(_NOT_CANONICAL)
        return super().unsign(signed_value)


def lazy_sha1(string: bytes = b"") -> t.Any:
    """SHA-1, looked up when first used rather than at import: a FIPS build may
    lack it, and must still be able to import us and configure another digest."""
    return hashlib.sha1(string)  # noqa: S324 - an HMAC digest, Flask-compatible


class DerivedKeySerializer(URLSafeTimedSerializer):
    """An itsdangerous serializer whose signer is built once, with a short way
    through it for the session cookie.

    Its keys are already derived (see :func:`make_signing_serializer`), so the
    signer is told to use them as they are. :meth:`loads` and :meth:`dumps`
    then handle the token ``payload.timestamp.signature`` directly instead of
    through itsdangerous's layers of signers and byte conversions, which cost
    more than the HMAC itself. They use the signer's own pieces (separator,
    clock, algorithm) and the serializer's payload coding, so a token is what
    the plain serializer with the original keys writes (byte for byte, but
    for the compressor's settings and small payloads left uncompressed, see
    :meth:`dump_payload`), and what it
    accepts is accepted here, but for a signature spelled in any way other
    than ours (refused, by every way in). A token it would refuse, another salt
    or ``return_timestamp`` take the ordinary way, so errors are exactly
    itsdangerous's (``tests/test_fast_paths.py`` checks all of this).
    """

    def __init__(
        self, *args: t.Any, max_payload_size: int = MAX_PAYLOAD_SIZE, **kwargs: t.Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_payload_size = max_payload_size
        signer = super().make_signer(self.salt)
        assert isinstance(signer, TimestampSigner)  # the timed serializer's default
        self._signer = signer
        self._keys = _DerivedKeys(signer)

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is None or salt == self.salt:
            return self._signer
        return super().make_signer(salt)

    def dump_payload(self, obj: t.Any) -> bytes:
        """The JSON, zlib-compressed when that makes it shorter, base64-encoded:
        itsdangerous's format, which Flask and itsdangerous read as usual.

        itsdangerous calls ``zlib.compress``, which sets up a 256 KB compressor
        for every cookie: 4 µs in a quiet process, up to 50 µs measured here
        when the allocator hands that memory back each time. A cookie is at
        most a few KB, so a 4 KB window and a smaller hash table lose nothing
        and cost 3 to 4 µs either way; only the stream's header differs (it
        records the window), and any zlib reads it.
        """
        data = super(URLSafeSerializerMixin, self).dump_payload(obj)
        if len(data) < COMPRESS_MIN_SIZE:  # too small to pay (readers accept either form)
            return _b64encode(data)
        compressor = zlib.compressobj(6, zlib.DEFLATED, 12, 5)
        compressed = compressor.compress(data) + compressor.flush()
        if len(compressed) < len(data) - 1:  # the "." marker costs a byte
            return b"." + _b64encode(compressed)
        return _b64encode(data)

    def load_payload(
        self,
        payload: bytes,
        *args: t.Any,
        serializer: t.Any | None = None,
        **kwargs: t.Any,
    ) -> t.Any:
        """itsdangerous's decoding (same errors), with decompression bounded:
        a payload that would expand past ``max_payload_size`` bytes is a
        :class:`~itsdangerous.BadPayload` after producing at most one byte
        more, so no cookie costs more than a small multiple of a normal one."""
        compressed = payload.startswith(b".")
        try:
            decoded = _b64decode(payload[1:] if compressed else payload)
        except ValueError:  # itsdangerous's way, for its exact error
            return super().load_payload(payload, *args, serializer=serializer, **kwargs)
        if not compressed:
            # Serializer.load_payload: the JSON itself, skipping the mixin's decoding.
            return super(URLSafeSerializerMixin, self).load_payload(decoded, serializer=serializer)
        limit = self.max_payload_size
        decompressor = zlib.decompressobj()
        try:
            data = decompressor.decompress(decoded, limit + 1)
        except Exception as e:
            raise BadPayload(
                "Could not zlib decompress the payload before decoding the payload",
                original_error=e,
            ) from e
        if len(data) > limit:
            raise BadPayload(f"the payload decompresses to more than {limit} bytes")
        if not decompressor.eof:  # truncated: zlib.decompress refuses it too
            raise BadPayload("Could not zlib decompress the payload before decoding the payload")
        # Serializer.load_payload: the JSON itself, skipping the mixin's decompression.
        return super(URLSafeSerializerMixin, self).load_payload(data, serializer=serializer)

    def may_be_permanent(self, token: str) -> bool:
        """:func:`may_be_permanent`, looking inside a compressed payload too.

        The compressed payload is decompressed (bounded) and searched, never
        parsed, and only after the signature verifies: nothing a client made
        up is ever decompressed. A 500-byte session's unused cookie then costs
        an HMAC and an inflate (~5 µs) instead of the whole decode (~25 µs).
        True whenever it cannot tell; the full decode then decides.
        """
        if not token.startswith("."):
            return may_be_permanent(token)
        if self.fallback_signers or not token.isascii():
            return True
        value, found, signature = token.encode("ascii").rpartition(b".")
        payload, found_timestamp, _ = value.rpartition(b".")
        if not (found and found_timestamp) or not self._keys.verify(value, signature):
            return True
        limit = self.max_payload_size
        decompressor = zlib.decompressobj()
        try:
            data = decompressor.decompress(_b64decode(payload[1:]), limit + 1)
        except (ValueError, zlib.error):
            return True
        return len(data) > limit or not decompressor.eof or b'"_permanent"' in data

    def dumps(self, obj: t.Any, salt: str | bytes | None = None) -> str:
        if salt is not None and salt != self.salt:
            return super().dumps(obj, salt)
        signer = self._signer
        sep = signer.sep
        timestamp = _b64encode(int_to_bytes(signer.get_timestamp()))
        value = self.dump_payload(obj) + sep + timestamp
        signature = self._keys.sign(value)
        token = value + sep + signature
        return token.decode("utf-8") if self.is_text_serializer else token  # type: ignore[return-value]

    def loads(  # type: ignore[override]  # as itsdangerous's own TimedSerializer.loads
        self,
        s: str | bytes,
        max_age: int | None = None,
        return_timestamp: bool = False,
        salt: str | bytes | None = None,
    ) -> t.Any:
        if return_timestamp or (salt is not None and salt != self.salt) or self.fallback_signers:
            return self._loads_plain(s, max_age, return_timestamp, salt)
        # One pass: split once, decode each part once, one HMAC per key tried.
        signer = self._signer
        sep = signer.sep
        value, found, signature = want_bytes(s).rpartition(sep)
        payload, found_timestamp, timestamp = value.rpartition(sep)
        if found and found_timestamp and self._keys.verify(value, signature):
            raw: bytes | None
            try:
                raw = _b64decode(timestamp)
            except ValueError:
                raw = None  # malformed: the plain way below raises itsdangerous's error
            if raw is not None and len(raw) <= 8:  # what itsdangerous's bytes_to_int takes
                age = signer.get_timestamp() - int.from_bytes(raw, "big")
                if max_age is None or 0 <= age <= max_age:
                    return self.load_payload(payload)
        return self._loads_plain(s, max_age, return_timestamp, salt)

    def _loads_plain(
        self,
        s: str | bytes,
        max_age: int | None,
        return_timestamp: bool,
        salt: str | bytes | None,
    ) -> t.Any:
        """itsdangerous's own way: what it refuses raises its exact error
        (loads_unsafe and callers that read the error's payload or date rely
        on it). What it accepts must also be spelled as we write it: its
        decoder reads respellings of a signature as the same bytes."""
        result = super().loads(s, max_age, return_timestamp, salt)
        if not is_canonical_signature(s):
            raise BadSignature(_NOT_CANONICAL)
        return result


# Cached per key set: building one costs 12 µs per request here, a cache hit 0.15 µs.
@lru_cache(maxsize=32)
def make_signing_serializer(
    secret_keys: tuple[str | bytes, ...],
    salt: str,
    key_derivation: str,
    digest_method: t.Any,
    serializer: t.Any,
    max_payload_size: int = MAX_PAYLOAD_SIZE,
) -> URLSafeTimedSerializer:
    """Build the serializer for one configuration, deriving each key once.

    itsdangerous derives the signing key from the secret on every sign and
    verify (one extra HMAC each); deriving here, once, removes that cost.
    ``secret_keys`` is oldest first, the current key last, as itsdangerous wants.
    """
    if digest_method is lazy_sha1:
        # hashlib.sha1 itself, looked up now (on first use): hmac hands a
        # hashlib constructor to OpenSSL in one call, but builds the HMAC out
        # of two Python-level hash objects for any other callable.
        digest_method = hashlib.sha1
    derived = [
        Signer(
            key, salt=salt, key_derivation=key_derivation, digest_method=digest_method
        ).derive_key()
        for key in secret_keys
    ]
    return DerivedKeySerializer(
        derived,
        salt=salt,
        serializer=serializer,
        signer_kwargs={"key_derivation": "none", "digest_method": digest_method},
        max_payload_size=max_payload_size,
    )
