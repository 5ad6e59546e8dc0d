"""Auth tokens and keys: verifiable with the published key, nothing private inside, keys kept."""

import base64
import hashlib
import hmac
import json
import stat
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest
from conftest import Service, service_env
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers import ME, REFRESH, error_type, logged_in, registered

from {{ cookiecutter.package }}.models import USER_FIELDS
from {{ cookiecutter.package }}.tokens import KeyPair

REGISTERED_CLAIMS = {"sub", "iat", "exp"}


def test_token_verifies_with_the_public_key_query(client):
    fields = registered(client)
    login = logged_in(client, fields)
    pem = client("{ publicKey }")["data"]["publicKey"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    claims = jwt.decode(login["token"], pem, algorithms=["RS256"])
    assert set(claims) == set(USER_FIELDS) | REGISTERED_CLAIMS
    assert claims["sub"] == claims["_id"] == login["user"]["_id"]
    assert {name: claims[name] for name in USER_FIELDS} == login["user"]
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert abs(claims["exp"] - time.time() - 15 * 60) < 60


def test_token_carries_no_password(client):
    fields = registered(client)
    token = logged_in(client, fields)["token"]
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()
    assert "password" not in payload.lower()
    assert fields["password"] not in payload
    assert "created_at" not in json.loads(payload)


def test_jwks_verifies_the_token(service, client):
    token = logged_in(client, registered(client))["token"]
    response = httpx.get(f"{service.url}/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])  # no private parts
    signing_key = jwt.PyJWKClient(
        f"{service.url}/.well-known/jwks.json"
    ).get_signing_key_from_jwt(token)
    assert signing_key.key_id == jwt.get_unverified_header(token)["kid"]
    assert jwt.decode(token, signing_key.key, algorithms=["RS256"])["sub"]


def test_token_signed_by_another_key_is_refused(client):
    token = logged_in(client, registered(client))["token"]
    assert "errors" not in client(ME)  # the genuine token, verified and kept
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    intruder = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        claims, intruder, algorithm="RS256", headers={"kid": header["kid"]}
    )
    assert (
        error_type(client(ME, authorization=f"Bearer {forged}")) == "UnauthorizedError"
    )


def test_unsigned_and_hmac_tokens_are_refused(client):
    token = logged_in(client, registered(client))["token"]
    assert "errors" not in client(ME)  # the genuine token, verified and kept
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    pem = client("{ publicKey }")["data"]["publicKey"]
    # The classic confusion: an HMAC token keyed with the public key.
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    signature = hmac.new(pem.encode(), header + b"." + body, hashlib.sha256).digest()
    confused = b".".join(
        [header, body, base64.urlsafe_b64encode(signature).rstrip(b"=")]
    ).decode()
    for bad in (unsigned, confused, token[:-4] + "AAAA"):
        assert (
            error_type(client(ME, authorization=f"Bearer {bad}")) == "UnauthorizedError"
        )


def _start(folder: Path, **env: str) -> Service:
    running = Service(folder, {**service_env(folder), **env})
    running.start()
    return running


def test_key_files_are_private_and_survive_a_restart(tmp_path):
    running = _start(tmp_path)
    try:
        client = running.client()
        token = logged_in(client, registered(client))["token"]
        public_key = client("{ publicKey }")["data"]["publicKey"]
    finally:
        running.stop()
    private_file = tmp_path / "keys" / "private.pem"
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o600
    assert (tmp_path / "keys" / "public.pem").read_text() == public_key
    running = _start(tmp_path)
    try:
        client = running.client()
        client.token = token
        assert "errors" not in client(ME)
        assert client("{ publicKey }")["data"]["publicKey"] == public_key
    finally:
        running.stop()


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_other_algorithms(tmp_path, algorithm):
    running = _start(tmp_path, AUTH_JWT_ALGORITHM=algorithm)
    try:
        client = running.client()
        token = logged_in(client, registered(client))["token"]
        assert jwt.get_unverified_header(token)["alg"] == algorithm
        key = jwt.PyJWKClient(
            f"{running.url}/.well-known/jwks.json"
        ).get_signing_key_from_jwt(token)
        assert jwt.decode(token, key.key, algorithms=[algorithm])["sub"]
        assert "errors" not in client(ME)
    finally:
        running.stop()


def test_a_key_that_does_not_fit_the_algorithm_stops_the_start(tmp_path):
    _start(tmp_path).stop()
    with pytest.raises(RuntimeError, match="AUTH_JWT_ALGORITHM"):
        _start(tmp_path, AUTH_JWT_ALGORITHM="ES256")


def _load_or_create(folder: str) -> str:
    keys = KeyPair.load_or_create(
        Path(folder) / "private.pem", Path(folder) / "public.pem", "RS256"
    )
    return keys.kid


def test_workers_starting_together_share_one_key_pair(tmp_path):
    with ProcessPoolExecutor(max_workers=4) as pool:
        kids = list(pool.map(_load_or_create, [str(tmp_path / "keys")] * 8))
    assert len(set(kids)) == 1
    assert sorted(path.name for path in (tmp_path / "keys").iterdir()) == [
        "private.pem",
        "public.pem",
    ]


def test_expired_token_is_refused_and_refresh_gives_a_new_one(tmp_path):
    # exp is a whole second, so a token lives between ttl - 1 and ttl seconds:
    # with 3, `me` right after the login is in time even on a loaded machine.
    running = _start(tmp_path, AUTH_AUTH_TOKEN_TTL="3")
    try:
        client = running.client()
        logged_in(client, registered(client))
        assert "errors" not in client(ME)  # verified once, and kept by the service
        time.sleep(3.1)
        assert error_type(client(ME)) == "UnauthorizedError"
        client.token = client(REFRESH)["data"]["refreshToken"]["token"]
        assert "errors" not in client(ME)
    finally:
        running.stop()
