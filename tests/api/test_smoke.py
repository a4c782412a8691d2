def test_create_then_get(api):
    created = api.created()
    assert api.get(created["id"]).json() == created
