from tests.browser.support import site  # noqa: F401 - the fixture
