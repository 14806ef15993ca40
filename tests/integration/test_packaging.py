"""What `pip install .` gives a user: the console script and the three twistd plugins."""

import subprocess

import pytest

from tests.integration.cluster import twistd

pytestmark = pytest.mark.integration


def test_twistd_lists_the_three_plugins(tmp_path) -> None:
    # Run outside the checkout, so only the installed dropin can be found.
    out = subprocess.run([twistd(), "--help"], capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    for name in ("bazaar-catalog", "bazaar-order", "bazaar-frontend"):
        assert name in out


def test_a_bad_config_stops_a_plugin_with_a_message_naming_the_key(tmp_path) -> None:
    (tmp_path / "bazaar.toml").write_text('[frontend]\ncahce = true\n')
    r = subprocess.run([twistd(), "-n", "bazaar-catalog"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode != 0
    assert "frontend.cahce" in r.stdout + r.stderr
