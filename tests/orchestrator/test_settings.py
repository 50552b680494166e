"""Settings: defaults, a YAML file, environment overrides and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import maps
from orchestrator.settings import Settings, SettingsError, default_campus_map


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment() -> None:
    """With no file and an empty environment, every setting has its documented default."""
    settings = Settings.load(env={})
    assert settings.database.url == "sqlite:///var/robopost.db"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8080)
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.embedded) == ("127.0.0.1", 1884, True)
    assert settings.log_level == "INFO"
    assert settings.campus.map == default_campus_map()


def test_default_campus_map_is_the_one_shipped_in_maps() -> None:
    """The default map is maps/campuses/neijiang.yaml inside the installed maps package."""
    expected = Path(maps.__file__).parent / "campuses" / "neijiang.yaml"
    assert default_campus_map() == expected
    assert expected.is_file()


def test_yaml_file_sets_values(tmp_path: Path) -> None:
    """Values in the YAML file replace the defaults, section by section, and leave the rest."""
    path = _write(
        tmp_path / "robopost.yaml",
        "database: {url: 'postgresql+psycopg://robopost@db/robopost'}\n"
        "http: {port: 9000}\n"
        "log_level: debug\n",
    )
    settings = Settings.load(path, env={})
    assert settings.database.url == "postgresql+psycopg://robopost@db/robopost"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 9000)
    assert settings.log_level == "DEBUG"


def test_relative_map_in_yaml_is_relative_to_the_file(tmp_path: Path) -> None:
    """A relative campus.map in a YAML file is resolved against that file's folder, not the cwd."""
    (tmp_path / "conf").mkdir()
    path = _write(tmp_path / "conf" / "site.yaml", "campus: {map: ../maps/site.yaml}\n")
    assert Settings.load(path, env={}).campus.map == tmp_path / "conf" / ".." / "maps" / "site.yaml"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """ROBOPOST_ variables with __ between levels win over the file; other variables are ignored."""
    path = _write(tmp_path / "robopost.yaml", "http: {host: 0.0.0.0, port: 9000}\nmqtt: {embedded: true}\n")
    env = {
        "ROBOPOST_HTTP__PORT": "9100",
        "ROBOPOST_MQTT__EMBEDDED": "false",
        "ROBOPOST_MQTT__PORT": "1883",
        "ROBOPOST_DATABASE__URL": "sqlite:///tmp/x.db",
        "robopost_log_level": "warning",
        "PATH": "/usr/bin",
    }
    settings = Settings.load(path, env=env)
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 9100)
    assert (settings.mqtt.port, settings.mqtt.embedded) == (1883, False)
    assert settings.database.url == "sqlite:///tmp/x.db"
    assert settings.log_level == "WARNING"


def test_environment_is_read_at_load_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an env argument, load() reads os.environ when called (not at import)."""
    monkeypatch.setenv("ROBOPOST_HTTP__PORT", "8181")
    assert Settings.load().http.port == 8181


def test_settings_are_immutable() -> None:
    """A loaded Settings object cannot be changed by accident."""
    settings = Settings.load(env={})
    with pytest.raises(ValueError, match="frozen"):
        settings.http.port = 1  # type: ignore[misc]


def test_bad_env_value_names_the_field_and_the_variable() -> None:
    """A value of the wrong type gives SettingsError naming the setting, the variable and the value."""
    with pytest.raises(SettingsError) as err:
        Settings.load(env={"ROBOPOST_HTTP__PORT": "eighty"})
    message = str(err.value)
    assert message.startswith("settings: http.port (from env ROBOPOST_HTTP__PORT):")
    assert "'eighty'" in message
    assert "\n" not in message


def test_bad_file_value_names_the_field_and_the_file(tmp_path: Path) -> None:
    """Out-of-range values and unknown log levels in the file are each reported with the file's name."""
    path = _write(tmp_path / "bad.yaml", "http: {port: 70000}\nlog_level: LOUD\n")
    with pytest.raises(SettingsError) as err:
        Settings.load(path, env={})
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"settings: http.port (from {path}): Input should be less than or equal to 65535"
    )
    assert lines[1].startswith(f"settings: log_level (from {path}):")


@pytest.mark.parametrize(
    ("env", "setting"),
    [({"ROBOPOST_HTTP_PORT": "1"}, "http_port"), ({"ROBOPOST_MQTT__HOTS": "x"}, "mqtt.hots")],
)
def test_unknown_env_setting_is_an_error(env: dict[str, str], setting: str) -> None:
    """A ROBOPOST_ variable that names no setting (a typo) is refused, not silently ignored."""
    with pytest.raises(
        SettingsError, match=rf"settings: {setting} \(from env {next(iter(env))}\): unknown setting"
    ):
        Settings.load(env=env)


def test_unknown_file_key_is_an_error(tmp_path: Path) -> None:
    """An unknown key in the YAML file is refused with its dotted name."""
    path = _write(tmp_path / "s.yaml", "database: {uri: x}\n")
    with pytest.raises(SettingsError, match=r"settings: database\.uri .*unknown setting"):
        Settings.load(path, env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [("http: [1, 2\n", "not valid YAML"), ("- a\n- b\n", "must hold a mapping, not list")],
)
def test_malformed_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    """Broken YAML or a file that is not a mapping gives SettingsError naming the file."""
    path = _write(tmp_path / "s.yaml", text)
    with pytest.raises(SettingsError, match=message) as err:
        Settings.load(path, env={})
    assert str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)


def test_missing_file_is_a_settings_error(tmp_path: Path) -> None:
    """A settings file that does not exist gives SettingsError naming it."""
    with pytest.raises(SettingsError, match="cannot read settings file"):
        Settings.load(tmp_path / "nope.yaml", env={})


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    """An empty settings file is allowed and gives the defaults."""
    assert Settings.load(_write(tmp_path / "empty.yaml", ""), env={}) == Settings()


def test_conflicting_env_variables_are_refused() -> None:
    """A variable for a whole section next to one for a key in it is reported, not merged by chance."""
    with pytest.raises(SettingsError, match="conflicts with another variable"):
        Settings.load(env={"ROBOPOST_HTTP": "x", "ROBOPOST_HTTP__PORT": "1"})


def test_delivery_windows_default_to_the_pilots_four_and_can_be_set(tmp_path: Path) -> None:
    """Four daily windows by default (SCENARIO.md); a file may give others, which come back sorted."""
    default = Settings().campus
    assert default.timezone == "Asia/Shanghai"
    assert [(w.id, w.start, w.end) for w in default.windows] == [
        ("w1", "07:30", "08:30"),
        ("w2", "12:00", "13:30"),
        ("w3", "17:00", "18:30"),
        ("w4", "21:00", "22:00"),
    ]
    path = _write(
        tmp_path / "robopost.yaml",
        "campus:\n  windows:\n"
        "    - {id: late, start: '20:00', end: '21:30'}\n"
        "    - {id: noon, start: '11:45', end: '13:00'}\n",
    )
    windows = Settings.load(path, env={}).campus.windows
    assert [(w.id, w.start_s, w.end_s) for w in windows] == [
        ("noon", 42_300.0, 46_800.0),
        ("late", 72_000.0, 77_400.0),
    ]


@pytest.mark.parametrize(
    ("campus", "problem"),
    [
        ("{windows: [{id: a, start: '9:00', end: '10:00'}]}", "'9:00' is not a time of day HH:MM"),
        (
            "{windows: [{id: a, start: '10:00', end: '09:00'}]}",
            "window a: end 09:00 must be after start 10:00",
        ),
        (
            "{windows: [{id: a, start: '10:00', end: '11:00'}, {id: b, start: '10:30', end: '12:00'}]}",
            "windows a (10:00-11:00) and b (10:30-12:00) overlap",
        ),
        (
            "{windows: [{id: a, start: '10:00', end: '11:00'}, {id: a, start: '12:00', end: '13:00'}]}",
            "window ids must be unique",
        ),
        ("{timezone: Mars/Olympus}", "'Mars/Olympus' is not an IANA time zone"),
        ("{windows: []}", "campus.windows"),
    ],
)
def test_bad_windows_are_refused_with_the_reason(tmp_path: Path, campus: str, problem: str) -> None:
    """Malformed times, an end before the start, overlaps, repeated ids and unknown zones are errors."""
    path = _write(tmp_path / "bad.yaml", f"campus: {campus}\n")
    with pytest.raises(SettingsError, match=re.escape(problem)):
        Settings.load(path, env={})
