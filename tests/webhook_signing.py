"""SendGrid's Event Webhook signature, made as SendGrid makes it: ECDSA P-256 over the
timestamp and the raw body. ``PUBLIC`` is what an operator pastes into
DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY."""

from __future__ import annotations

import base64
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.readers.events import SIGNATURE_HEADER, TIMESTAMP_HEADER

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def signed_headers(body: bytes) -> dict[str, str]:
    """The headers of a signed webhook POST carrying ``body``, stamped now."""
    stamp = str(int(time.time()))
    signature = KEY.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: stamp,
            "Content-Type": "application/json"}
