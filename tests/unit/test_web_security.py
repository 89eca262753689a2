"""What `serve` asks before other machines may reach it: a loopback address, or TLS and a token of at least 128 bits."""

from __future__ import annotations

from web.security import is_loopback, token_bits


def test_a_token_s_strength_is_its_length_times_its_alphabet_s_bits() -> None:
    assert [token_bits(t) for t in ("", "abc", "1" * 39, "0123456789abcdef" * 2, "A1b2" * 5 + "_-", "A1b2" * 5 + "~!")] == [
        0, 12, 129, 128, 132, 144]


def test_only_loopback_addresses_and_localhost_keep_other_machines_out() -> None:
    hosts = {"127.0.0.1": True, "127.0.0.2": True, "::1": True, "[::1]": True, "localhost": True, "LOCALHOST": True,
             "127.evil.example": False, "0.0.0.0": False, "::": False, "10.0.0.1": False, "ledger.example": False}
    assert {host: is_loopback(host) for host in hosts} == hosts
