"""SQL that loads distinct ES256 tokens for bench part 3 (first-time verification: no token is
seen twice, so the verified-token cache does not help). Signed here with PyJWT and a fresh P-256
key whose public half is added to auth.keys. Usage: first_time_tokens.py N > tokens.sql"""
import json
import sys
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.utils import base64url_encode

n = int(sys.argv[1])
key = ec.generate_private_key(ec.SECP256R1())
numbers = key.public_key().public_numbers()
public_jwk = {
    "kty": "EC", "crv": "P-256", "kid": "es-bench", "alg": "ES256",
    "x": base64url_encode(numbers.x.to_bytes(32, "big")).decode(),
    "y": base64url_encode(numbers.y.to_bytes(32, "big")).decode(),
}
print(f"SELECT auth.add_key('{json.dumps(public_jwk)}');")
print("CREATE TABLE first_time (alg text, n int, token text, PRIMARY KEY (alg, n));")
print("COPY first_time FROM stdin;")
for i in range(n):
    claims = {"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated",
              "exp": 4102444800, "jti": str(i)}
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "es-bench"})
    print(f"ES256\t{i}\t{token}")
print("\\.")
