"""TURN REST credentials, ICE server descriptions and the shared secret (no coturn needed)."""

import json

import pytest

from turn.credentials import (SECRET_ENV, TurnCredential, TurnSecretError, TurnSettings, ice_servers,
                              link_headers, load_secret, mint)

SECRET = b"north-wind-secret-0123"
URLS = ["stun:turn.example.org:3478", "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp", "turns:turn.example.org:5349?transport=tcp"]


def test_mint_follows_the_turn_rest_scheme():
    credential = mint(SECRET, "viewer-alice", ttl=300, now=1_699_999_700)
    assert credential.username == "1700000000:viewer-alice"
    # printf '1700000000:viewer-alice' | openssl dgst -sha1 -hmac 'north-wind-secret-0123' -binary | base64
    assert credential.password == "ipN5XDx29grEz2lBM0JVaLTBy0M="
    assert credential.expires_at == 1_700_000_000


def test_expiry_is_capped_by_not_after_and_rounded_down():
    credential = mint(SECRET, "viewer-bob", ttl=3600, not_after=1_700_000_100.9, now=1_700_000_000)
    assert credential.expires_at == 1_700_000_100  # the viewer link's end, never a fraction later
    assert mint(SECRET, "v", ttl=60.7, now=1_700_000_000.5).expires_at == 1_700_000_061
    assert credential.remaining(now=1_700_000_090) == 10
    assert not credential.expired(now=1_700_000_099) and credential.expired(now=1_700_000_100)


@pytest.mark.parametrize("kwargs", [
    {"not_after": 1_699_999_999},        # the viewer link has already expired
    {"not_after": 1_700_000_000.5},      # would round down to the past
    {"ttl": 0}, {"ttl": -5}, {"ttl": float("inf")}, {"ttl": float("nan")},
])
def test_mint_refuses_credentials_that_would_be_born_expired(kwargs):
    with pytest.raises(ValueError):
        mint(SECRET, "viewer", **{"ttl": 60, "now": 1_700_000_000, **kwargs})


@pytest.mark.parametrize("name", ["", "a b", 'quote"', "back\\slash", "comma,", "semi;colon", "new\nline",
                                  "ünïcode", "x" * 65, "colon:name"])
def test_names_that_would_need_escaping_are_refused(name):
    with pytest.raises(ValueError):
        mint(SECRET, name, ttl=60)


def test_an_empty_secret_mints_nothing():
    with pytest.raises(TurnSecretError):
        mint(b"", "viewer", ttl=60)


def test_reprs_never_show_secret_or_password():
    credential = mint(SECRET, "viewer", ttl=60)
    settings = TurnSettings(URLS, SECRET, ttl=120)
    assert credential.password not in repr(credential) and credential.username in repr(credential)
    assert SECRET.decode() not in repr(settings) and SECRET.decode() not in str(settings)
    assert "turn.example.org" in repr(settings)


def test_ice_servers_in_the_w3c_shape():
    credential = TurnCredential("1700000000:viewer", "cGFzcw==", 1_700_000_000)
    servers = ice_servers(URLS, credential)
    assert servers == [
        {"urls": ["stun:turn.example.org:3478"]},
        {"urls": URLS[1:], "username": "1700000000:viewer", "credential": "cGFzcw=="},
    ]
    json.dumps(servers)  # goes to the page as JSON
    assert ice_servers(["stun:h:3478"], None) == [{"urls": ["stun:h:3478"]}]
    with pytest.raises(ValueError):
        ice_servers(URLS, None)


def test_link_headers_as_whep_sends_them():
    credential = TurnCredential("1700000000:viewer", "cGFzcw==", 1_700_000_000)
    assert link_headers(URLS[:2], credential) == [
        '<stun:turn.example.org:3478>; rel="ice-server"',
        '<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="1700000000:viewer"; '
        'credential="cGFzcw=="; credential-type="password"',
    ]


@pytest.mark.parametrize("url", ["http://turn.example.org", "turn:", "turn:host:99999", "turn:host?transport=sctp",
                                 "stun:host?transport=udp", "turn:host name", "turn:h>x", "turn:h\r\nX: y",
                                 "turn:h:3478?transport=udp,<stun:evil>"])
def test_malformed_urls_are_refused(url):
    with pytest.raises(ValueError):
        ice_servers([url], mint(SECRET, "v", ttl=60))
    with pytest.raises(ValueError):
        TurnSettings([url], SECRET)


def test_settings_mint_with_their_ttl_and_describe_their_urls():
    settings = TurnSettings(URLS, SECRET, ttl=120)
    credential = settings.mint("tablet-7", now=1_700_000_000)
    assert credential.expires_at == 1_700_000_120
    assert credential == mint(SECRET, "tablet-7", 120, now=1_700_000_000)
    assert settings.mint("viewer", not_after=1_700_000_050, now=1_700_000_000).expires_at == 1_700_000_050
    assert settings.ice_servers(credential)[1]["urls"] == URLS[1:]
    assert len(settings.link_headers(credential)) == len(URLS)


def test_settings_refuse_turn_without_a_usable_secret():
    with pytest.raises(TurnSecretError):
        TurnSettings(URLS, b"")
    with pytest.raises(TurnSecretError):
        TurnSettings(URLS, b"short")
    assert TurnSettings(["stun:h:3478"], b"").ice_servers(None) == [{"urls": ["stun:h:3478"]}]


# -- the secret --------------------------------------------------------------------------------

def secret_file(tmp_path, content: bytes, mode: int = 0o600):
    path = tmp_path / "turn-secret"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_secret_from_a_file_without_its_newline(tmp_path):
    assert load_secret(secret_file(tmp_path, SECRET + b"\n"), environ={}) == SECRET
    assert load_secret(secret_file(tmp_path, SECRET + b"\r\n", 0o640), environ={}) == SECRET


def test_secret_from_the_environment(tmp_path):
    assert load_secret(None, environ={SECRET_ENV: SECRET.decode() + "\n"}) == SECRET
    # An explicit file wins over the environment.
    other = b"another-secret-456789"
    assert load_secret(secret_file(tmp_path, other), environ={SECRET_ENV: SECRET.decode()}) == other


@pytest.mark.parametrize("content, message", [
    (b"", "empty"), (b"\n", "empty"), (b"short\n", "too short"),
    (b"two words in one secret", "blanks"), (b"line-one-0123456\nline-two-0123456", "blanks"),
    ("sécret-with-accents-0123".encode(), "printable ASCII"),
])
def test_unfit_secrets_are_refused(tmp_path, content, message):
    with pytest.raises(TurnSecretError, match=message):
        load_secret(secret_file(tmp_path, content), environ={})


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o666, 0o602])
def test_a_secret_file_open_to_every_user_is_refused(tmp_path, mode):
    path = secret_file(tmp_path, SECRET, mode)
    with pytest.raises(TurnSecretError, match="chmod 600") as error:
        load_secret(path, environ={})
    assert SECRET.decode() not in str(error.value)


def test_missing_secret_says_where_to_put_one(tmp_path):
    with pytest.raises(TurnSecretError, match=SECRET_ENV):
        load_secret(None, environ={})
    with pytest.raises(TurnSecretError, match="cannot read"):
        load_secret(tmp_path / "absent", environ={})
    with pytest.raises(TurnSecretError, match="TURN secret file"):
        load_secret(tmp_path, environ={})  # a directory


def test_settings_load_reads_the_secret(tmp_path):
    settings = TurnSettings.load(URLS, secret_file(tmp_path, SECRET + b"\n"), ttl=30, environ={})
    assert settings.secret == SECRET and settings.ttl == 30
