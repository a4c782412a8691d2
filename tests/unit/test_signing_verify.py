"""What a webhook receiver checks (tmf_server.events.signing.verify, used by `tmf-server listen`)."""
from tmf_server.events.signing import sign, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = '{"eventType":"ServiceProblemCreateEvent"}'


def test_a_signature_of_the_secret_is_verified_among_several():
    header = "v1,bm90IHRoaXMgb25l " + sign(SECRET, "msg-1", 1_700_000_000, BODY)
    assert verify(SECRET, "msg-1", "1700000000", BODY, header, now=1_700_000_010)


def test_anything_changed_is_refused():
    header = sign(SECRET, "msg-1", 1_700_000_000, BODY)
    assert not verify("whsec_" + "A" * 32, "msg-1", "1700000000", BODY, header, now=1_700_000_010)  # other secret
    assert not verify(SECRET, "msg-2", "1700000000", BODY, header, now=1_700_000_010)  # other webhook-id
    assert not verify(SECRET, "msg-1", "1700000000", BODY + " ", header, now=1_700_000_010)  # other body
    assert not verify(SECRET, "msg-1", "1700000000", BODY, header, now=1_700_000_000 + 301)  # too old: a replay
    assert not verify(SECRET, "msg-1", "soon", BODY, header, now=1_700_000_010)  # not a timestamp
    assert not verify(SECRET, "msg-1", "1700000000", BODY, "", now=1_700_000_010)  # unsigned
