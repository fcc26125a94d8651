"""The image cache's decisions (pure): manifest validation, fetch plan, retention, GC, URLs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metalplane.rack.images.manifest import ManifestError, parse_manifest
from metalplane.rack.images.plan import (
    Fetch,
    file_url,
    fit_space,
    latest_complete,
    plan_fetch,
    plan_gc,
    plan_retention,
    region_base_urls,
    resume_offset,
    url_order,
    version_key,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def f(name: str, size: int = 10) -> dict:
    return {"sha256": sha(name), "size": size, "path": f"/MAAS/boot-resources/file/{sha(name)}"}


def img(version: str, kernel: str, initrd: str, name: str = "ephemeral/bookworm", arch: str = "amd64") -> dict:
    return {
        "name": name,
        "architecture": arch,
        "subarch": "generic",
        "version": version,
        "files": {"boot-kernel": f(kernel, 8), "boot-initrd": f(initrd, 40)},
    }


def manifest(*images: dict):
    parsed, problems = parse_manifest({"images": list(images)})
    assert problems == []
    return parsed


# ---------------------------------------------------------------- manifest


def test_manifest_parses_and_dedupes_shared_files():
    m = manifest(img("1", "k", "i"), img("1", "k", "i2", arch="arm64"))
    assert len(m.images) == 2
    assert set(m.wanted()) == {sha("k"), sha("i"), sha("i2")}
    assert m.images[0].file("boot-kernel").size == 8
    assert m.images[0].url_path("boot-kernel") == "/images/ephemeral/bookworm/amd64/generic/1/boot-kernel"


@pytest.mark.parametrize(
    "change, words",
    [
        ({"name": "../etc"}, "bad image name"),
        ({"name": "by-sha256/x"}, "bad image name"),
        ({"name": "a//b"}, "bad image name"),
        ({"version": ".."}, "bad version"),
        ({"architecture": "amd64/x"}, "bad architecture"),
        ({"files": {}}, "no files"),
        ({"files": {"boot-kernel": {"sha256": "xyz", "size": 1, "path": "/p"}}}, "bad sha256"),
        ({"files": {"boot-kernel": {"sha256": sha("a"), "size": -1, "path": "/p"}}}, "bad size"),
        ({"files": {"boot-kernel": {"sha256": sha("a"), "size": True, "path": "/p"}}}, "bad size"),
        ({"files": {"boot-kernel": {"sha256": sha("a"), "size": 1, "path": "relative"}}}, "bad path"),
        ({"files": {"../x": f("a")}}, "bad file type"),
    ],
)
def test_bad_images_are_skipped_with_a_problem(change, words):
    bad = {**img("1", "k", "i"), **change}
    m, problems = parse_manifest({"images": [bad, img("2", "k2", "i2", name="ubuntu/noble")]})
    assert [i.name for i in m.images] == ["ubuntu/noble"]
    assert len(problems) == 1 and words in problems[0]


def test_manifest_shape_errors_raise():
    for raw in (None, [], {"images": {}}, {"nope": []}):
        with pytest.raises(ManifestError):
            parse_manifest(raw)


def test_same_sha_with_two_sizes_is_refused_and_duplicates_dropped():
    a = img("1", "k", "i")
    b = img("2", "k", "j")
    b["files"]["boot-kernel"]["size"] = 9
    m, problems = parse_manifest({"images": [a, b, a]})
    assert [i.version for i in m.images] == ["1"]
    assert len(problems) == 2


def test_sha256_is_lower_cased():
    raw = img("1", "k", "i")
    raw["files"]["boot-kernel"]["sha256"] = sha("k").upper()
    m, _ = parse_manifest({"images": [raw]})
    assert m.images[0].file("boot-kernel").sha256 == sha("k")


# ---------------------------------------------------------------- fetch plan


def test_plan_fetch_skips_cached_resumes_partials_smallest_first():
    m = manifest(img("1", "k", "i"))
    wanted = m.wanted()
    assert plan_fetch(wanted, {sha("k"), sha("i")}, {}) == []
    plan = plan_fetch(wanted, set(), {sha("i"): 30})
    # initrd: 40 bytes, 30 already here -> 10 left; kernel 8 left: kernel first
    assert [p.sha256 for p in plan] == [sha("k"), sha("i")]
    assert plan[1] == Fetch(sha("i"), 40, wanted[sha("i")].path, 30)
    assert plan[0].resume_from == 0


def test_fit_space_takes_what_fits_in_order():
    fetches = [Fetch("a", 10, "/a", 0), Fetch("b", 50, "/b", 20), Fetch("c", 40, "/c", 0), Fetch("d", 5, "/d", 0)]
    fit, left = fit_space(fetches, free_bytes=100, reserve=50)
    assert [f.sha256 for f in fit] == ["a", "b", "d"]  # 10 + 30 + 5 <= 50; c (40) does not fit after a, b
    assert [f.sha256 for f in left] == ["c"]
    assert fit_space(fetches, 10, 50) == ([], fetches)


@pytest.mark.parametrize(
    "partial, size, offset",
    [
        (None, 10, 0),
        (0, 10, 0),
        (5, 10, 5),
        (10, 10, 10),
        (11, 10, 0),
        (-1, 10, 0),
    ],
)
def test_resume_offset(partial, size, offset):
    assert resume_offset(partial, size) == offset


# ---------------------------------------------------------------- retention and GC


def test_retention_keeps_previous_complete_version():
    old = manifest(img("20261101", "k1", "i1")).images
    new = manifest(img("20261123", "k2", "i2"))
    have = {sha("k1"), sha("i1")}
    # new one not downloaded yet: old stays (and with keep 1 too: never lose the last good one)
    for keep in (1, 2):
        kept = plan_retention(new, old, have, keep)
        assert [i.version for i in kept] == ["20261123", "20261101"]
    have |= {sha("k2"), sha("i2")}
    assert [i.version for i in plan_retention(new, old, have, 2)] == ["20261123", "20261101"]
    assert [i.version for i in plan_retention(new, old, have, 1)] == ["20261123"]


def test_retention_drops_incomplete_old_versions_and_vanished_images():
    old = manifest(img("1", "k1", "i1"), img("1", "u1", "v1", name="ubuntu/noble")).images
    new = manifest(img("2", "k2", "i2"))
    kept = plan_retention(new, old, {sha("k1")}, 3)  # old bookworm incomplete, noble gone
    assert [(i.name, i.version) for i in kept] == [("ephemeral/bookworm", "2")]


def test_retention_orders_versions_naturally_and_caps():
    versions = ["20261123.9", "20261123.10", "20261101", "20261123.2"]
    old = [manifest(img(v, f"k{v}", f"i{v}")).images[0] for v in versions]
    have = {s for i in old for s in i.shas()}
    new = manifest(img("20261201", "kn", "in"))
    have |= {sha("kn"), sha("in")}
    kept = plan_retention(new, old, have, 3)
    assert [i.version for i in kept] == ["20261201", "20261123.10", "20261123.9"]


def test_gc_deletes_what_no_kept_image_needs():
    kept = manifest(img("2", "k2", "shared")).images
    plan = plan_gc(kept, {sha("k1"), sha("shared"), sha("k2")}, {sha("x"), sha("k2")}, {sha("k2"), sha("shared")})
    assert plan.delete_files == {sha("k1")}
    assert plan.delete_partials == {sha("x")}


def test_latest_complete():
    images = [manifest(img(v, f"k{v}", f"i{v}")).images[0] for v in ("1", "3", "2")]
    have = {sha("k1"), sha("i1"), sha("k2"), sha("i2"), sha("k3")}
    assert latest_complete(images, ("ephemeral/bookworm", "amd64", "generic"), have).version == "2"
    assert latest_complete(images, ("ephemeral/bookworm", "arm64", "generic"), have) is None


@given(
    st.lists(st.from_regex(r"[1-9][0-9]{0,3}(\.[1-9][0-9]{0,2}){0,2}", fullmatch=True), min_size=1, max_size=8),
    st.integers(1, 4),
)
def test_retention_properties(versions, keep):
    images = [manifest(img(v, f"k{v}", f"i{v}")).images[0] for v in dict.fromkeys(versions)]
    current, previous = images[0], images[1:]
    have = {s for i in images for s in i.shas()}
    kept = plan_retention(manifest(current.to_json()), previous, have, keep)
    assert current.ident in {i.ident for i in kept}  # the manifest's image is always kept
    assert len(kept) == min(keep, len(images))
    assert len({i.version for i in kept}) == len(kept)
    older = sorted((i for i in previous), key=lambda i: version_key(i.version), reverse=True)
    assert [i.ident for i in kept if i is not current and i.ident != current.ident] == [
        i.ident for i in older[: keep - 1]
    ]


def test_version_key():
    assert version_key("20261123.2") < version_key("20261123.10") < version_key("20261124")
    assert sorted(["b", "a10", "a9"], key=version_key) == ["a9", "a10", "b"]


# ---------------------------------------------------------------- URLs


def test_url_order_rotates_by_digest_and_keeps_all():
    urls = ["http://a", "http://b", "http://c"]
    orders = {tuple(url_order(urls, sha(str(n)))) for n in range(50)}
    assert all(sorted(o) == urls for o in orders)
    assert len({o[0] for o in orders}) == 3  # files spread over the regions
    assert url_order([], sha("x")) == []


def test_file_url_and_region_base_urls():
    path = "/MAAS/boot-resources/file/abc"
    assert file_url("http://10.0.0.1:5240/MAAS", path) == "http://10.0.0.1:5240/MAAS/boot-resources/file/abc"
    assert file_url("http://10.0.0.1:5240", path) == "http://10.0.0.1:5240/MAAS/boot-resources/file/abc"
    assert file_url("http://x", "http://y/z") == "http://y/z"
    with pytest.raises(ValueError):
        file_url("nope", path)
    assert region_base_urls(["http://a:5240/MAAS", "http://a:5240/MAAS/", "http://[fd00::1]:5240/MAAS"]) == [
        "http://a:5240",
        "http://[fd00::1]:5240",
    ]
