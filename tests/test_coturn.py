"""A real coturn on loopback: our credentials against it, and the production config's rules.

Every packet goes to coturn on 127.0.0.1 (or to a peer socket of this test on 127.0.0.1).
CreatePermission for 10.0.0.1 and the like only asks coturn; nothing is sent to those peers.
"""

import dataclasses
import socket
import time
from pathlib import Path

import pytest

from support.coturn import localize_config, run_coturn
from turn.credentials import mint
from turn.turnconf import SAMPLE_PARAMS, TurnConfParams, render

pytestmark = pytest.mark.coturn

# A secret with the characters a config file could trip over: it must reach coturn intact.
PRODUCTION_SECRET = b'prod#secret="with=odd+chars/0123"'

DENIED_IPV4 = ["10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "100.64.0.1", "127.0.0.1",
               "0.0.0.0", "198.18.0.1", "240.0.0.1", "255.255.255.255"]
DENIED_IPV6 = ["::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:127.0.0.1", "::ffff:192.168.1.1", "::1", "::",
               "fd00:ec2::254", "fc00::1", "fe80::1", "64:ff9b::a00:1", "2001:db8::1", "ff02::1"]
PUBLIC_IPV4, PUBLIC_IPV6 = "8.8.8.8", "2606:4700::1111"  # permissions only: nothing is sent there


# -- credentials against coturn -----------------------------------------------------------------

@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_minted_credentials_allocate_and_relay(coturn, transport):
    credential = mint(coturn.secret, "viewer-1", ttl=60)
    with coturn.client(credential, transport=transport) as client, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.settimeout(2)
        peer.bind(("127.0.0.1", 0))
        allocation = client.allocate()
        assert allocation.ok, allocation
        relayed = allocation.relayed_address
        assert relayed[0] == "127.0.0.1" and coturn.relay_ports[0] <= relayed[1] <= coturn.relay_ports[1]
        assert client.create_permission("127.0.0.1").ok  # loopback peers allowed on the test relay
        client.send(peer.getsockname(), b"ping")
        data, source = peer.recvfrom(100)
        assert (data, source) == (b"ping", relayed)
        peer.sendto(b"pong", relayed)
        assert client.receive() == (peer.getsockname(), b"pong")


def test_expired_credentials_are_refused_with_401(coturn):
    expired = mint(coturn.secret, "viewer-late", ttl=60, now=time.time() - 3600)
    with coturn.client(expired) as client:
        assert client.allocate().code == 401
    assert "viewer-late" in coturn.log()  # coturn names the user it refused, not the password


def test_wrong_passwords_are_refused_with_401(coturn):
    credential = coturn.mint("viewer-2")
    with coturn.client(credential, password="AAAAAAAAAAAAAAAAAAAAAAAAAAA=") as client:
        assert client.allocate().code == 401
    other_secret = mint(b"some-other-secret-0123", "viewer-2", ttl=60)
    with coturn.client(other_secret) as client:
        assert client.allocate().code == 401


def test_an_allocation_outlives_its_credential(coturn):
    """coturn 4.6.1 checks the expiry in the username when a session starts, not later: an
    allocation made in time keeps refreshing after its credential expired. Ending a viewer's
    access therefore means closing its peer connection, not waiting for TURN to refuse it."""
    credential = coturn.mint("viewer-short", ttl=1.2)
    with coturn.client(credential) as client:
        assert client.allocate().ok
        time.sleep(max(0.0, credential.remaining()) + 1.05)  # coturn compares whole seconds
        assert credential.expired()
        assert client.create_permission("127.0.0.1").ok
        assert client.refresh(600).ok
    with coturn.client(credential) as late:
        assert late.allocate().code == 401


# -- the production config ----------------------------------------------------------------------

def production_params(**change) -> TurnConfParams:
    # Placeholder paths for cert and key: localize_config swaps them for a throwaway pair.
    params = TurnConfParams(public_ip="8.8.8.8", private_ip="10.0.0.5", realm="turn.example.org",
                            secret=PRODUCTION_SECRET, cert=Path("/etc/ssl/fullchain.pem"),
                            pkey=Path("/etc/ssl/privkey.pem"))
    return dataclasses.replace(params, **change)


# What binds a config to a real node, and only that, is swapped for loopback in these tests.
SWAPPED = {"listening-ip", "relay-ip", "external-ip", "listening-port", "tls-listening-port", "min-port",
           "max-port", "cert", "pkey", "syslog", "no-stdout-log"}


def test_production_config_runs_and_refuses_private_peers(tmp_path):
    with run_coturn(tmp_path, config=render(production_params()), ipv6=True, tls=True) as server:
        assert set(server.swapped) == SWAPPED
        assert server.secret == PRODUCTION_SECRET and server.realm == "turn.example.org"
        for transport in ("udp", "tcp", "tls"):
            with server.client(transport=transport) as client:
                assert client.allocate().ok, transport

        with server.client() as client:
            assert client.allocate().ok
            refused = {peer: client.create_permission(peer).code for peer in DENIED_IPV4}
            assert refused == dict.fromkeys(DENIED_IPV4, 403)
            assert client.create_permission(PUBLIC_IPV4).ok  # the rules do not overreach
        with server.client() as client:
            # An IPv6 relay (added on ::1 for this test; the production one is IPv4 only) is what
            # lets ::ffff:10.0.0.1 through the IPv4 rules; an IPv4 relay answers 443 to it anyway.
            assert client.allocate(family="ipv6").ok
            refused = {peer: client.create_permission(peer).code for peer in DENIED_IPV6}
            assert refused == dict.fromkeys(DENIED_IPV6, 403)
            assert client.create_permission(PUBLIC_IPV6).ok
        log = server.log()
    assert "Wrong address format" not in log  # every denied-peer-ip line was understood
    assert PRODUCTION_SECRET.decode() not in log


def test_production_rules_deny_loopback_even_with_allow_loopback_peers(tmp_path):
    """Loopback is refused by coturn's default *and* by the 127.0.0.0/8 and ::1 rules; adding
    --allow-loopback-peers lifts only the former, so this shows the rules hold on their own.
    (The other relay tests use a config without the rules, where loopback peers work.)"""
    config = render(production_params(tls=False, cert=None, pkey=None))
    with run_coturn(tmp_path, config=config, ipv6=True, extra_args=("--allow-loopback-peers",)) as server:
        with server.client() as client:
            assert client.allocate().ok
            assert client.create_permission("127.0.0.1").code == 403
            assert client.create_permission("127.1.2.3").code == 403
        with server.client() as client:
            assert client.allocate(family="ipv6").ok
            assert client.create_permission("::1").code == 403
        assert "allow_loopback_peers opens a possible security vulnerability" in server.log()


def test_the_sample_as_is_authenticates_nobody(tmp_path):
    # The sample holds no secret; with use-auth-secret and no secret coturn accepts no one.
    # (Its placeholder addresses are swapped for loopback ones: run unlocalized, coturn would
    # drop them and listen on every interface.)
    with run_coturn(tmp_path, config=render(SAMPLE_PARAMS), tls=True) as server:
        for secret in (b"x", b"PUBLIC_IP", b"turn.example.org"):
            credential = mint(secret, "anyone", ttl=60)
            with server.client(credential) as client:
                assert client.allocate().code == 401


# -- what coturn 4.6.1 makes of denied-peer-ip (why the config is written as it is) -------------

@pytest.mark.parametrize("rules, ipv6, allowed, denied", [
    # A CIDR is not understood: logged as "Wrong address format" and dropped; first-last works.
    (["172.16.0.0/12", "10.0.0.0-10.255.255.255"], False, ["172.16.0.1"], ["10.0.0.1"]),
    # An IPv4 range does not cover the IPv4-mapped spelling of its addresses.
    (["10.0.0.0-10.255.255.255"], True, ["::ffff:10.0.0.1"], []),
    # '::' as a single address denies every peer, IPv6 and IPv4 alike.
    (["::"], True, [], [PUBLIC_IPV6, "::ffff:8.8.8.8"]),
    (["::"], False, [], [PUBLIC_IPV4]),
    # '::-::ffff:ffff' (IPv4-compatible ::/96) denies every IPv4 peer.
    (["::-::ffff:ffff"], False, [], [PUBLIC_IPV4]),
])
def test_how_coturn_reads_denied_peer_ip(tmp_path, rules, ipv6, allowed, denied):
    args = tuple(f"--denied-peer-ip={rule}" for rule in rules)
    with run_coturn(tmp_path, ipv6=ipv6, extra_args=args) as server, server.client() as client:
        assert client.allocate(family="ipv6" if ipv6 else "ipv4").ok
        assert {peer: client.create_permission(peer).code for peer in allowed + denied} == \
            {**dict.fromkeys(allowed), **dict.fromkeys(denied, 403)}
        assert ("Wrong address format" in server.log()) == any("/" in rule for rule in rules)


# -- the helper itself ----------------------------------------------------------------------------

def test_coturn_is_stopped_even_when_the_test_fails(tmp_path):
    with pytest.raises(RuntimeError, match="test failed"):
        with run_coturn(tmp_path) as server:
            process = server.process
            raise RuntimeError("test failed")
    assert process.poll() is not None


def test_localize_config_swaps_only_node_bindings():
    text, swapped = localize_config(render(production_params()), port=40000, relay=(41000, 41015),
                                    tls=(40001, Path("/tmp/c.pem"), Path("/tmp/k.pem")), ipv6=False)
    production = render(production_params())
    kept = [line for line in production.splitlines() if line.split("=", 1)[0] not in SWAPPED]
    assert [line for line in text.splitlines() if line.split("=", 1)[0] not in SWAPPED] == kept
    assert set(swapped) == SWAPPED
    assert "external-ip" not in {line.split("=", 1)[0] for line in text.splitlines()}
