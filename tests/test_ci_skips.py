"""The conftest hook that turns skips into failures when $CI is set (inner pytest sessions via ``pytester``)."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

INNER = '''
import pytest

def test_needs_data():
    pytest.skip("shared data not found")

@pytest.fixture
def tool():
    pytest.skip("hadolint not installed")

def test_needs_tool(tool):
    pass

@pytest.mark.ci_may_skip
def test_allowed():
    pytest.skip("needs a GPU")

@pytest.mark.xfail(reason="known")
def test_known_bug():
    assert False

def test_fine():
    pass
'''


@pytest.fixture()
def inner(pytester):
    pytester.makeconftest(CONFTEST.read_text().replace('pytest_plugins = ("pytester",)', ""))
    pytester.makepyfile(INNER)
    return pytester


def test_without_ci_skips_stay_skips(inner, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = inner.runpytest("-ra")
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    result.stdout.fnmatch_lines(["skipped tests: 3"])


def test_with_ci_a_skip_is_a_failure(inner, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = inner.runpytest("-ra")
    # the fixture's skip (setup phase) becomes an error, the test's own skip a failure; the marked one still skips
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=1, xfailed=1)
    for line in ("FAILED *test_needs_data - skipped with CI='true', which must provide what it needs: *shared data*",
                 "ERROR *test_needs_tool - skipped with CI='true'*hadolint not installed*",
                 "skipped tests: 1; $CI is set, so a skip fails"):
        result.stdout.fnmatch_lines([line])
