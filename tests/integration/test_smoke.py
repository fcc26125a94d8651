def test_version_is_anonymous(api, shared_region):
    from metalplane.client.http import MaasHttp

    with MaasHttp(shared_region.url) as anon:
        response = anon.get("version/")
    assert response.status_code == 200
    assert response.json()["subversion"] == "metalplane"
