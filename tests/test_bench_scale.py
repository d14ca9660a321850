"""`make bench-10m`: the opt-in size selects the scenarios that show how the log grows, with
every ratio's baseline, at 10,000,000 notifications (bench/harness.py SCALES)."""

import pytest

from bench import harness


@pytest.fixture(scope="module", autouse=True)
def scenarios():
    harness.discover()


def test_the_10m_scale_runs_every_search_with_its_baseline_at_ten_million():
    args = harness.parse_args(["--scale", "10m"])
    selected = harness.select(args.only)
    names = {cls.name for cls, _ in selected}
    searches = {name for name in harness.SCENARIOS if name.startswith("search.")}
    assert len(searches) >= 12  # the 11 support searches and the deep page
    assert searches <= names
    assert {name.replace("search.", "naive.", 1) for name in searches} <= names
    assert {
        "storage.bytes",
        "storage.seed",
        "api.list",
        "retention.drop_day",
        "retention.delete_day",
    } <= names
    assert "send.dispatch" not in names and "floor" not in names

    sizes = harness.sizes_for(selected, args.smoke, args.set, lenient=True)
    assert sizes["search.email"]["notifications"] == 10_000_000
    assert sizes["naive.email"]["naive_repeat"] == 1
    assert sizes["api.list"]["notifications"] == 10_000_000
    assert sizes["storage.bytes"]["notifications"] == 10_000_000
    assert sizes["retention.drop_day"]["notifications"] == 1_430_000
    # One seed serves them all: the searches, the API and the bytes share its run.once key.
    keys = {
        (s["notifications"], s["days"], s["environments"]) for n, s in sizes.items() if "days" in s
    }
    assert keys == {(10_000_000, 7, 3)}


def test_the_command_line_narrows_and_overrides_a_scale():
    args = harness.parse_args(["--scale", "10m", "--only", "storage.bytes",
                               "--set", "notifications=20000"])  # fmt: skip
    selected = harness.select(args.only)
    assert [cls.name for cls, _ in selected] == ["storage.bytes"]
    sizes = harness.sizes_for(selected, args.smoke, args.set, lenient=True)
    assert sizes["storage.bytes"]["notifications"] == 20_000


def test_a_pattern_that_matches_nothing_is_an_error_that_names_it():
    with pytest.raises(ValueError, match="sarch"):
        harness.select(["sarch.*"])


def test_scale_and_smoke_do_not_mix(capsys):
    with pytest.raises(SystemExit):
        harness.parse_args(["--scale", "10m", "--smoke"])
    assert "choose one" in capsys.readouterr().err
