"""WeCom callback cryptography and parsing: the one module that imports wechatpy.

WeCom signs every callback with SHA-1 over (token, timestamp, nonce, ciphertext) sorted, and
encrypts the payload with AES-256-CBC under the EncodingAESKey (PKCS#7, 32-byte blocks, random
16-byte prefix, 4-byte length, payload, receiver id). wechatpy does the cipher work; we compare
signatures in constant time ourselves, because wechatpy compares them with ``!=``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from typing import Any

from wechatpy.crypto import _get_signature
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import PrpCrypto

from bot.config import aes_key_from


class CryptoError(Exception):
    """The ciphertext could not be decrypted into a payload for our corp."""


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return str(_get_signature(token, timestamp, nonce, encrypt))


class WeComCrypto:
    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        self.token = token
        self.corp_id = corp_id
        self._key = aes_key_from(encoding_aes_key)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bool:
        expected = signature(self.token, timestamp, nonce, encrypt)
        return hmac.compare_digest(expected.encode(), msg_signature.encode("utf-8", "replace"))

    def decrypt(self, encrypt: str) -> str:
        """Decrypt a verified ciphertext; raise CryptoError for anything malformed or foreign."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("ciphertext is not base64") from exc
        if not raw or len(raw) % 16:
            raise CryptoError("ciphertext length is not a multiple of the block size")
        try:
            plain = PrpCrypto(self._key).cipher.decrypt(raw)
        except Exception as exc:  # the cipher library's own errors
            raise CryptoError("ciphertext does not decrypt") from exc
        pad = plain[-1]
        if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CryptoError("payload too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise CryptoError("payload length out of range")
        receiver = content[4 + length :]
        if not hmac.compare_digest(receiver, self.corp_id.encode()):
            raise CryptoError("payload is for another corp")
        try:
            return content[4 : 4 + length].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CryptoError("payload is not UTF-8") from exc

    def encrypt(self, plaintext: str) -> str:
        return str(PrpCrypto(self._key).encrypt(plaintext, self.corp_id).decode("ascii"))

    def seal(self, xml: str, timestamp: str, nonce: str | None = None) -> dict[str, str]:
        """Encrypt and sign as WeCom does: returns Encrypt, msg_signature, timestamp, nonce."""
        nonce = nonce or secrets.token_hex(8)
        encrypt = self.encrypt(xml)
        return {
            "Encrypt": encrypt,
            "msg_signature": signature(self.token, timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }


def callback_body(encrypt: str, to_user: str, agent_id: str) -> str:
    """The outer XML WeCom posts to a callback URL."""
    return (
        f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_standard_message(xml: str) -> Any:
    """wechatpy's parser for the message and event types it knows (text, enter_agent, ...)."""
    return parse_message(xml)
