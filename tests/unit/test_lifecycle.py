import pytest

from tmf_server.errors import BadRequest, Conflict
from tmf_server.problems import lifecycle

STATUSES = ["acknowledged", "rejected", "pending", "held", "inProgress", "resolved", "cancelled", "closed"]
# The TMF656 R18.5 lifecycle, written out independently of the module under test.
ALLOWED = {
    ("acknowledged", "inProgress"), ("acknowledged", "rejected"), ("acknowledged", "cancelled"),
    ("acknowledged", "pending"), ("pending", "acknowledged"),  # not yet actionable <-> actionable
    ("inProgress", "held"), ("inProgress", "pending"), ("inProgress", "resolved"), ("inProgress", "cancelled"),
    ("held", "inProgress"), ("held", "cancelled"), ("pending", "inProgress"), ("pending", "cancelled"),
    ("resolved", "closed"), ("resolved", "acknowledged"),
}


def test_table_covers_every_status_of_the_schema():
    assert set(lifecycle.TRANSITIONS) == set(STATUSES)
    assert lifecycle.FINAL_STATUSES == {"rejected", "closed", "cancelled"}


@pytest.mark.parametrize("source", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_transition(source, target):
    if (source, target) in ALLOWED:
        lifecycle.check_transition(source, target)
    else:
        with pytest.raises(Conflict) as caught:
            lifecycle.check_transition(source, target)
        allowed = sorted(t for s, t in ALLOWED if s == source)
        for name in allowed:
            assert name in caught.value.message
        if not allowed:
            assert "final" in caught.value.message


def test_status_change_records_dates_and_tracking():
    document = {"status": "resolved", "statusChangeReason": "fixed the line card"}
    lifecycle.apply_status_change(document, "inProgress", "2026-01-02T03:04:05.000Z", "sys", reason_given=True)
    assert document["statusChangeDate"] == document["resolutionDate"] == "2026-01-02T03:04:05.000Z"
    [record] = document["trackingRecord"]
    assert record["description"] == "status changed from inProgress to resolved"
    assert record["time"] == "2026-01-02T03:04:05.000Z" and record["systemId"] == "sys"


def test_created_only_in_initial_status():
    assert lifecycle.check_initial(None) == "acknowledged"
    with pytest.raises(BadRequest):
        lifecycle.check_initial("inProgress")


def test_a_change_without_a_new_reason_drops_the_old_one():
    document = {"status": "held", "statusChangeReason": "line test scheduled"}
    lifecycle.apply_status_change(document, "inProgress", "2026-01-02T03:04:05.000Z", "sys", reason_given=False)
    assert "statusChangeReason" not in document
    assert "characteristic" not in document["trackingRecord"][0]


def test_reopening_clears_the_resolution_date():
    document = {"status": "acknowledged", "resolutionDate": "2026-01-01T00:00:00.000Z"}
    lifecycle.apply_status_change(document, "resolved", "2026-01-02T03:04:05.000Z", "sys", reason_given=False)
    assert "resolutionDate" not in document
    assert document["trackingRecord"][0]["description"] == "status changed from resolved to acknowledged"


@pytest.mark.parametrize("status,open_", [("acknowledged", True), ("pending", True), ("held", True),
                                          ("inProgress", True), ("resolved", False), ("closed", False),
                                          ("cancelled", False), ("rejected", False)])
def test_an_open_report_is_neither_final_nor_resolved(status, open_):
    assert lifecycle.is_open_status(status) is open_


def test_allows_follows_the_transition_table():
    assert lifecycle.allows("inProgress", "resolved") and lifecycle.allows("acknowledged", "cancelled")
    assert not lifecycle.allows("acknowledged", "resolved") and not lifecycle.allows("closed", "cancelled")
    assert lifecycle.allows("resolved", "resolved")  # no change
