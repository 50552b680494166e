"""The cart process's configuration file: read, validated with one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from robots.cart.config import CartConfigError, load_config, stop_labels

REPO = Path(__file__).resolve().parents[3]


def test_a_valid_file_is_read(tmp_path: Path) -> None:
    """Sections and defaults come out typed."""
    path = tmp_path / "cart.yaml"
    path.write_text(
        "cart: cart_1\norchestrator: {url: 'http://127.0.0.1:8080', token: 'cart-1-token-0123456789'}\n"
        "locker: {port: /dev/ttyUSB0, compartments: 48}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.cart == "cart_1" and config.locker.compartments == 48 and config.screen.port == 8090
    assert config.orchestrator is not None and config.orchestrator.url.endswith(":8080")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cart: [", "not valid YAML"),
        ("- a list", "must be a mapping"),
        ("cart: cart_1\nlocker: {port: /dev/ttyUSB0, compartments: 65}", "locker.compartments"),
        ("cart: cart_1\nlocker: {port: x, compartments: 4}\nextra: 1", "extra"),
    ],
)
def test_bad_files_are_refused_with_the_setting_named(tmp_path: Path, text: str, message: str) -> None:
    """Broken YAML, a list, an out-of-range value, an unknown setting: CartConfigError naming it."""
    path = tmp_path / "cart.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CartConfigError, match=message):
        load_config(path)


def test_stop_labels_come_from_the_campus_map() -> None:
    """The screen's stop names: the map's Chinese label and an English name."""
    labels = stop_labels(REPO / "maps" / "campuses" / "neijiang.yaml")
    assert labels["stop_dorm_1"].zh == "1号学生公寓停靠点" and labels["stop_dorm_1"].en == "Stop Dorm 1"
