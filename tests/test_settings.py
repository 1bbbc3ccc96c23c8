"""The config file: allowlist with a recorded basis, overrides, and errors that name file, key and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from chanwatch.settings import DEFAULT_STORAGE_ROOT, load_settings
from processing.errors import BadInputError

GOOD = """\
[storage]
root = "/srv/chanwatch"

[import]
max_media_bytes = 1000

[hashing]
max_image_pixels = 50000000

[[channels]]
username = "first_channel"
channel_id = 1001
basis = "Reported by hotline X, case 17"
approved_by = "A. Lead"
approved_at = 2026-11-01

[[channels]]
username = "@second_channel"
basis = "Regulator request 2026-44"
approved_by = "A. Lead"
approved_at = 2026-11-02
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chanwatch.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_its_allowlist(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={})
    assert settings.storage_root == "/srv/chanwatch"
    assert settings.imports.max_media_bytes == 1000
    assert settings.hashing.max_image_pixels == 50_000_000 and settings.hashing.video_fps == 1.0
    first, second = settings.allowlist
    assert (first.username, first.channel_id, first.approved_at) == ("first_channel", 1001, dt.date(2026, 11, 1))
    assert second.username == "second_channel" and second.channel_id is None
    assert settings.channel_by_id(1001) is first and settings.channel_by_username("@SECOND_channel") is second


def test_environment_and_cli_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    env = {"CHANWATCH_STORAGE_ROOT": "/env/root", "CHANWATCH_IMPORT_MAX_MEDIA_BYTES": "5"}
    assert load_settings(path, environ=env).storage_root == "/env/root"
    assert load_settings(path, environ=env).imports.max_media_bytes == 5
    assert load_settings(path, storage="/cli/root", environ=env).storage_root == "/cli/root"
    assert load_settings(environ={"CHANWATCH_CONFIG": str(path)}).storage_root == "/srv/chanwatch"


def test_no_config_file_means_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.storage_root == DEFAULT_STORAGE_ROOT
    assert [c.username for c in settings.allowlist] == ["chanwatch_demo"]
    assert settings.config_path is None


@pytest.mark.parametrize(("mutation", "expected"), [
    (('basis = "Regulator request 2026-44"\n', ""), "chanwatch.toml:17: key 'channels[1].basis': is required"),
    (('approved_at = 2026-11-02', 'approved_at = "soon"'),
     "chanwatch.toml:21: key 'channels[1].approved_at': must be a TOML date"),
    (('username = "first_channel"', 'username = "x"'),
     "chanwatch.toml:11: key 'channels[0].username': 'x' is not a public channel username"),
    (("channel_id = 1001", 'channel_id = "abc"'),
     "chanwatch.toml:12: key 'channels[0].channel_id': must be a positive"),
    (('approved_by = "A. Lead"\napproved_at = 2026-11-01', 'approved_by = "A. Lead"\napproved_at = 2026-11-01\n'
      'colour = "red"'), "chanwatch.toml:16: key 'channels[0].colour': unknown key"),
    (("max_media_bytes = 1000", "max_media_bytes = -3"), "chanwatch.toml:5: key 'import.max_media_bytes'"),
    (('root = "/srv/chanwatch"', "root = 5"), "chanwatch.toml:2: key 'storage.root'"),
    (('root = "/srv/chanwatch"', 'root = "/srv'), "chanwatch.toml: invalid TOML"),
    (("[import]", "[imports]"), "chanwatch.toml:4: unknown key 'imports'"),
    (("max_image_pixels = 50000000", "max_image_pixels = 0"), "chanwatch.toml:8: key 'hashing.max_image_pixels'"),
    (("max_image_pixels = 50000000", "max_pixels = 5"), "chanwatch.toml:8: key 'hashing.max_pixels': unknown key"),
])
def test_bad_config_names_file_key_and_line(tmp_path: Path, mutation: tuple[str, str], expected: str) -> None:
    old, new = mutation
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(BadInputError) as caught:
        load_settings(path, environ={})
    assert expected in str(caught.value).replace(str(tmp_path) + "/", "")


def test_duplicate_channel_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("@second_channel", "first_channel"))
    with pytest.raises(BadInputError, match="listed twice"):
        load_settings(path, environ={})


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_cli_reports_bad_config_with_exit_2(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import CLI
    path = write(tmp_path, GOOD.replace('approved_by = "A. Lead"\napproved_at = 2026-11-01', ""))
    result = subprocess.run([*CLI, "--config", str(path), "import-export", str(tmp_path)], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert f"{path}:" in result.stderr and "approved_by" in result.stderr


def test_matching_rules_are_settings_with_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "chanwatch.toml"
    path.write_text('[storage]\nroot = "x"\n\n[matching]\npdq_max_distance = 24\nvpdq_compared_match_percent = 80\n'
                    'pdq_min_quality = 0\n')
    rules = load_settings(path, environ={"CHANWATCH_MATCHING_PHASH_MAX_DISTANCE": "6"}).matching
    assert (rules.pdq_max_distance, rules.vpdq_compared_match_percent, rules.pdq_min_quality) == (24, 80.0, 0)
    assert rules.phash_max_distance == 6 and rules.vpdq_query_match_percent == 80.0  # default kept
    path.write_text('[storage]\nroot = "x"\n\n[matching]\npdq_max_distance = 0\n')
    with pytest.raises(BadInputError, match=r"chanwatch.toml:5: key 'matching.pdq_max_distance'"):
        load_settings(path, environ={})


def test_review_settings_database_url_from_environment_and_documented_defaults(tmp_path: Path) -> None:
    from review.config import ReviewSettings

    path = tmp_path / "chanwatch.toml"
    path.write_text('[storage]\nroot = "x"\n\n[review]\nclaim_minutes = 30\ndatabase_url = "sqlite:///r.db"\n')
    settings = load_settings(path, environ={"CHANWATCH_REVIEW_RENOTIFY_HOURS": "48"})
    assert (settings.review.claim_minutes, settings.review.renotify_hours) == (30, 48)
    assert settings.review.max_failed_logins == ReviewSettings().max_failed_logins
    assert settings.review_database_url == "sqlite:///r.db"
    secret_url = "postgresql://u:secret@h/db"
    assert load_settings(path, environ={"CHANWATCH_REVIEW_DATABASE_URL": secret_url}).review_database_url == secret_url
    path.write_text('[storage]\nroot = "x"\n\n[review]\nclaim_minute = 30\n')
    with pytest.raises(BadInputError, match=r"chanwatch.toml:5: key 'review.claim_minute': unknown key"):
        load_settings(path, environ={})
    example = load_settings(Path(__file__).resolve().parents[1] / "chanwatch.example.toml", environ={})
    assert example.review == ReviewSettings(), "the example documents the defaults"


def test_review_database_url_password_is_masked_in_messages() -> None:
    from storage.reviewdb.engine import safe_url

    assert "secret" not in safe_url("postgresql://u:secret@h/db") and "***" in safe_url("postgresql://u:secret@h/db")
