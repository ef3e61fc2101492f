"""turnserver.conf rendering, its input checks and `inkcast turn-config` (no coturn needed here;
tests/test_coturn.py runs the rendered config in a real coturn)."""

import argparse
import dataclasses
import ipaddress
import stat
from pathlib import Path

import pytest

from turn import main as turn_main
from turn.turnconf import (FORBIDDEN_KEYS, LEFT_TO_COTURN, SAMPLE_PARAMS, TurnConfError, TurnConfParams, check,
                           render)

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"0123456789abcdef-test-secret"

# The ranges a public relay must refuse as peers (issue 3).
REQUIRED_DENIED = [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::1/128", "::/128", "64:ff9b::/96", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10",
    "ff00::/8", "::ffff:0:0/96",
]
PUBLIC_PEERS = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2a00:1450:4001::200e"]


@pytest.fixture
def tls_files(tmp_path):
    cert, pkey = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    pkey.write_text("-----BEGIN PRIVATE KEY-----\n")
    return cert, pkey


@pytest.fixture
def params(tls_files):
    return TurnConfParams(public_ip="8.8.8.8", private_ip="10.0.0.5", realm="turn.example.org", secret=SECRET,
                          min_port=49152, max_port=65535, cert=tls_files[0], pkey=tls_files[1])


def entries(text: str) -> list[tuple[str, str]]:
    """(key, value) per setting line of a turnserver.conf; comments and blanks skipped."""
    result = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            result.append((key.strip(), value.strip()))
    return result


def denied_ranges(text: str) -> list[tuple[int, int, int]]:
    """(ip version, first, last) for each denied-peer-ip line."""
    ranges = []
    for key, value in entries(text):
        if key == "denied-peer-ip":
            assert "/" not in value, f"coturn 4.6.1 ignores CIDR: {value}"
            first, _, last = value.partition("-")
            lo, hi = ipaddress.ip_address(first), ipaddress.ip_address(last or first)
            assert lo.version == hi.version and lo <= hi
            ranges.append((lo.version, int(lo), int(hi)))
    return ranges


def test_render_has_the_security_settings(params):
    text = render(params)
    keys = dict(entries(text))
    for flag in ("use-auth-secret", "fingerprint", "no-cli", "no-multicast-peers", "no-software-attribute",
                 "no-tlsv1", "no-tlsv1_1", "no-rfc5780", "no-stun-backward-compatibility", "no-tcp-relay",
                 "no-dtls", "syslog"):
        assert flag in keys, flag
    assert keys["listening-port"] == "3478" and keys["tls-listening-port"] == "5349"
    assert keys["static-auth-secret"] == SECRET.decode()
    assert keys["realm"] == "turn.example.org"
    assert keys["external-ip"] == "8.8.8.8/10.0.0.5"
    assert keys["listening-ip"] == keys["relay-ip"] == "10.0.0.5"
    assert (keys["min-port"], keys["max-port"]) == ("49152", "65535")
    assert keys["cert"] == str(params.cert) and keys["pkey"] == str(params.pkey)
    assert int(keys["stale-nonce"]) > 0
    assert int(keys["user-quota"]) > 0 and int(keys["total-quota"]) >= int(keys["user-quota"])
    assert int(keys["max-bps"]) > 0
    assert not set(keys) & set(FORBIDDEN_KEYS)


def test_every_private_and_special_range_is_denied(params):
    ranges = denied_ranges(render(params))
    left_to_coturn = {network for network, _ in LEFT_TO_COTURN}
    for network in map(ipaddress.ip_network, REQUIRED_DENIED):
        if str(network) in left_to_coturn:
            continue  # coturn refuses it by itself; tests/test_coturn.py checks that it does
        first, last = int(network.network_address), int(network.broadcast_address)
        assert any(v == network.version and lo <= first and last <= hi for v, lo, hi in ranges), network


def test_public_peers_stay_reachable(params):
    ranges = denied_ranges(render(params))
    for peer in map(ipaddress.ip_address, PUBLIC_PEERS):
        assert not any(v == peer.version and lo <= int(peer) <= hi for v, lo, hi in ranges), peer


def test_without_private_ip_the_public_ip_is_bound_and_no_nat_mapping(params):
    keys = dict(entries(render(dataclasses.replace(params, private_ip=""))))
    assert keys["listening-ip"] == keys["relay-ip"] == "8.8.8.8"
    assert "external-ip" not in keys


def test_tls_off(params):
    params = dataclasses.replace(params, tls=False, cert=None, pkey=None)
    check(params)
    keys = dict(entries(render(params)))
    assert "no-tls" in keys and "tls-listening-port" not in keys and "cert" not in keys


def test_sample_file_is_what_render_gives():
    sample = (ROOT / "turn" / "turnserver.conf.sample").read_text()
    assert sample == render(SAMPLE_PARAMS), "regenerate: python -m turn.turnconf > turn/turnserver.conf.sample"
    # The sample carries no secret at all, not even a placeholder coturn would accept.
    assert "static-auth-secret" not in dict(entries(sample))


def test_good_params_pass(params):
    check(params)


@pytest.mark.parametrize("change, message", [
    ({"public_ip": "10.0.0.1"}, "not a public address"),
    ({"public_ip": "192.168.1.10"}, "not a public address"),
    ({"public_ip": "172.20.0.1"}, "not a public address"),
    ({"public_ip": "127.0.0.1"}, "not a public address"),
    ({"public_ip": "100.64.0.1"}, "not a public address"),
    ({"public_ip": "169.254.169.254"}, "not a public address"),
    ({"public_ip": "203.0.113.7"}, "not a public address"),
    ({"public_ip": "0.0.0.0"}, "not a public address"),
    ({"public_ip": "224.0.0.1"}, "not a public address"),
    ({"public_ip": "2606:4700::1111"}, "IPv6"),
    ({"public_ip": "PUBLIC_IP"}, "not an IP address"),
    ({"public_ip": ""}, "not an IP address"),
    ({"public_ip": "8.8.8.8\nallowed-peer-ip=10.0.0.0-10.255.255.255"}, "not an IP address"),
    ({"private_ip": "8.8.4.4"}, "not a private address"),
    ({"private_ip": "127.0.0.1"}, "not a private address"),
    ({"private_ip": "169.254.1.1"}, "not a private address"),
    ({"private_ip": "0.0.0.0"}, "not a private address"),
    ({"private_ip": "fd00::5"}, "IPv6"),
    ({"private_ip": "ten.zero"}, "not an IP address"),
    ({"realm": ""}, "realm"),
    ({"realm": "turn example"}, "realm"),
    ({"realm": "turn.example.org\nallowed-peer-ip=0.0.0.0-255.255.255.255"}, "realm"),
    ({"realm": "-turn.example.org"}, "realm"),
    ({"min_port": 60000, "max_port": 50000}, "min before max"),
    ({"min_port": 80, "max_port": 2000}, "1024-65535"),
    ({"min_port": 60000, "max_port": 70000}, "1024-65535"),
    ({"min_port": 50000, "max_port": 50005}, "too small"),
    ({"min_port": 3000, "max_port": 4000}, "includes listening port 3478"),
    ({"min_port": 5000, "max_port": 6000}, "includes listening port 5349"),
    ({"min_port": "49152"}, "must be an integer"),
    ({"user_quota": 0}, "quotas"),
    ({"user_quota": 100, "total_quota": 10}, "quotas"),
    ({"max_bps": -1}, "negative"),
    ({"cert": None}, "no cert"),
    ({"pkey": None}, "no pkey"),
    ({"cert": Path("/nonexistent/fullchain.pem")}, "does not exist"),
    ({"cert": Path("/etc/my certs/fullchain.pem")}, "blanks"),
    ({"secret": None}, "no TURN secret"),
    ({"secret": b"short"}, "too short"),
    ({"secret": b"has a blank in it 0123"}, "blanks"),
    ({"secret": b"newline-in-secret\nallowed-peer-ip=10.0.0.1"}, "blanks"),
])
def test_bad_inputs_are_refused(params, change, message):
    with pytest.raises(TurnConfError, match=message) as error:
        check(dataclasses.replace(params, **change))
    assert SECRET.decode() not in str(error.value)


def test_all_problems_are_reported_at_once(params):
    with pytest.raises(TurnConfError) as error:
        check(dataclasses.replace(params, public_ip="10.0.0.1", realm="", min_port=3000, max_port=4000))
    assert len(str(error.value).splitlines()) == 3


def test_params_repr_hides_the_secret(params):
    assert SECRET.decode() not in repr(params)


# -- the subcommand ----------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inkcast")
    turn_main.register(parser.add_subparsers(dest="command"))
    return parser


def run(argv: list[str]) -> int:
    args = parser().parse_args(["turn-config", *argv])
    return args.func(args)


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "turn-secret"
    path.write_bytes(SECRET + b"\n")
    path.chmod(0o600)
    return path


def cli_args(secret_file, tls_files) -> list[str]:
    return ["--public-ip", "8.8.8.8", "--private-ip", "10.0.0.5", "--realm", "turn.example.org",
            "--secret-file", str(secret_file), "--min-port", "50000", "--max-port", "50999",
            "--cert", str(tls_files[0]), "--pkey", str(tls_files[1])]


def test_turn_config_writes_a_private_file(tmp_path, secret_file, tls_files, capsys, monkeypatch):
    monkeypatch.delenv("INKCAST_TURN_SECRET", raising=False)
    output = tmp_path / "turnserver.conf"
    assert run(cli_args(secret_file, tls_files) + ["-o", str(output)]) == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o640
    expected = TurnConfParams(public_ip="8.8.8.8", private_ip="10.0.0.5", realm="turn.example.org", secret=SECRET,
                              min_port=50000, max_port=50999, cert=tls_files[0], pkey=tls_files[1])
    assert output.read_text() == render(expected)
    out, err = capsys.readouterr()
    assert SECRET.decode() not in out + err


def test_turn_config_replaces_an_existing_file_with_a_private_one(tmp_path, secret_file, tls_files):
    output = tmp_path / "turnserver.conf"
    output.write_text("old")
    output.chmod(0o644)
    assert run(cli_args(secret_file, tls_files) + ["-o", str(output)]) == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o640 and "use-auth-secret" in output.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".turnserver.conf")] == []


def test_turn_config_reads_the_environment(tmp_path, tls_files, capsys, monkeypatch):
    for name, value in {"INKCAST_TURN_PUBLIC_IP": "8.8.8.8", "INKCAST_TURN_REALM": "turn.example.org",
                        "INKCAST_TURN_SECRET": SECRET.decode(), "INKCAST_TURN_TLS": "off"}.items():
        monkeypatch.setenv(name, value)
    output = tmp_path / "turnserver.conf"
    assert run(["-o", str(output)]) == 0
    keys = dict(entries(output.read_text()))
    assert keys["static-auth-secret"] == SECRET.decode() and "no-tls" in keys


def test_turn_config_refuses_bad_input_with_reasons(tmp_path, secret_file, tls_files, capsys):
    output = tmp_path / "turnserver.conf"
    argv = cli_args(secret_file, tls_files) + ["--public-ip", "192.168.1.2", "--min-port", "100", "-o", str(output)]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "192.168.1.2 is not a public address" in err and "1024-65535" in err
    assert SECRET.decode() not in err and not output.exists()


def test_turn_config_refuses_a_world_readable_secret(tmp_path, secret_file, tls_files, capsys):
    secret_file.chmod(0o644)
    assert run(cli_args(secret_file, tls_files) + ["-o", str(tmp_path / "out.conf")]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_turn_config_to_stdout_but_not_to_a_terminal(secret_file, tls_files, capsys, monkeypatch):
    assert run(cli_args(secret_file, tls_files)) == 0
    assert "use-auth-secret" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert run(cli_args(secret_file, tls_files)) == 2
    out, err = capsys.readouterr()
    assert out == "" and "terminal" in err


def test_help_documents_every_input(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["turn-config", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--public-ip", "--private-ip", "--realm", "--secret-file", "--min-port", "--max-port",
                 "--cert", "--pkey", "--no-tls", "--output", "INKCAST_TURN_SECRET"):
        assert flag in help_text, flag
