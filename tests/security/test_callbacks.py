"""Callback addresses (tmf_server/events/callbacks.py): only globally routable ones unless TMF_CALLBACK_ALLOW says
otherwise, whatever the spelling of the host. Literal addresses only: no DNS is needed for these."""
from __future__ import annotations

import ipaddress

import pytest

from tmf_server.errors import BadRequest
from tmf_server.events.callbacks import allowed_addresses, check_callback


@pytest.mark.parametrize("url, fragment", [
    ("http://100.100.100.200/latest/meta-data/", "shared"),  # 100.64.0.0/10, a cloud's metadata service
    ("http://100.64.0.1/x", "shared"),
    ("http://192.0.0.170/x", "reserved"),  # 192.0.0.0/24, IETF protocol assignments
    ("http://198.18.0.1/x", "reserved"),  # 198.18.0.0/15, benchmarking
    ("http://192.0.2.10/x", "reserved"),  # documentation
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.1/x", "private"),
    ("http://240.0.0.1/x", "reserved"),
    ("http://224.0.0.1/x", "multicast"),
    ("http://255.255.255.255/x", "broadcast"),
    ("http://0.0.0.0/x", "unspecified"),
    ("http://127.0.0.1/x", "loopback"),
    ("http://127.0.0.1./x", "loopback"),  # trailing dot
    ("http://2130706433/x", "loopback"),  # 127.0.0.1 as one number
    ("http://0x7f.1/x", "loopback"),  # hexadecimal, short form
    ("http://0177.0.0.1/x", "loopback"),  # octal
    ("http://127.1/x", "loopback"),
    ("http://0xA9FEA9FE/x", "link-local"),  # 169.254.169.254 in hex
    ("http://1681915904/x", "shared"),  # 100.64.0.0 as one number
])
def test_non_public_addresses_are_refused_in_any_spelling(url, fragment):
    with pytest.raises(BadRequest) as refused:
        check_callback(url, ())
    assert refused.value.code == "callbackNotAllowed" and fragment in refused.value.message, refused.value.message


def test_public_addresses_pass_and_are_what_the_dispatcher_connects_to():
    assert allowed_addresses("https://93.184.215.14:8443/hook", ()) == [ipaddress.ip_address("93.184.215.14")]
    assert allowed_addresses("http://0x5db8d70e/hook", ()) == [ipaddress.ip_address("93.184.215.14")]


@pytest.mark.parametrize("url, allow", [
    ("http://127.0.0.1./x", ("loopback",)),
    ("http://2130706433/x", ("loopback",)),
    ("http://100.100.100.200/x", ("private",)),
    ("http://10.1.2.3/x", ("private",)),
    ("http://100.100.100.200/x", ("100.64.0.0/10",)),
    ("http://224.0.0.1/x", ("224.0.0.0/4",)),
])
def test_the_allow_list_lifts_exactly_what_it_names(url, allow):
    check_callback(url, allow)


@pytest.mark.parametrize("url, allow", [
    ("http://10.1.2.3/x", ("loopback",)),
    ("http://127.0.0.1/x", ("private",)),
    ("http://224.0.0.1/x", ("private",)),  # multicast needs a CIDR
    ("http://100.100.100.201/x", ("100.100.100.200/32",)),
])
def test_the_allow_list_lifts_nothing_else(url, allow):
    with pytest.raises(BadRequest):
        check_callback(url, allow)


def test_an_unresolvable_host_is_refused_with_that_reason():
    with pytest.raises(BadRequest) as refused:
        check_callback("http://no-such-host.invalid./x", ())
    assert "cannot be resolved" in refused.value.message
