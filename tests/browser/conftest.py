"""Fixtures for the browser tests: one chromium and one lab per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.support import UiLab, UiUser, launch
from tests.support.databases import world_traversable_tempdir


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module, not per session: while Playwright's sync API runs, its event loop is
    the running loop of the test thread, and the tests after these need asyncio.run."""
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lab(databases) -> Iterator[UiLab]:
    """Two regions on one database (as behind HAProxy), with an admin and a non-admin user."""
    lab = UiLab(databases, world_traversable_tempdir("mp-ui-")).start()
    yield lab
    lab.stop()


@pytest.fixture
def person(browser, lab) -> Iterator[UiUser]:
    """A fresh browser context (no cookies) on the first region."""
    user = UiUser(browser, lab.first.base)
    yield user
    user.close()
