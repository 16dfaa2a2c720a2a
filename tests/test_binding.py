"""Mappings at work: request parameters bound to an action's spec, and requests routed by Action and Version."""

from __future__ import annotations

import pytest

from proxy.actions import CONVERTERS
from proxy.aliyun.errors import AliyunError
from proxy.mappings import ActionSpec, Registry, default_dir, load


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load(default_dir(), CONVERTERS)


# --- binding request parameters -----------------------------------------------------------------------------

GOOD = {"ImageURL": "http://example.com/a.png", "MinHeight": "10", "OutputProbability": "true"}


@pytest.fixture(scope="module")
def character(registry: Registry) -> ActionSpec:
    return registry.route("RecognizeCharacter", "2019-12-30")


@pytest.mark.parametrize(("raw", "value"), [("True", True), ("true", True), ("FALSE", False), ("false", False)])
def test_booleans_case_insensitive(character: ActionSpec, raw: str, value: bool) -> None:
    assert character.bind({**GOOD, "OutputProbability": raw})["OutputProbability"] is value


def test_boolean_rejects_other_words(character: ActionSpec) -> None:
    with pytest.raises(AliyunError) as exc:
        character.bind({**GOOD, "OutputProbability": "yes"})
    assert (exc.value.code, exc.value.status) == ("InvalidParameter", 400)
    assert "OutputProbability" in exc.value.message


def test_integers_from_strings(character: ActionSpec) -> None:
    bound = character.bind({**GOOD, "MinHeight": "12"})
    assert bound["MinHeight"] == 12 and type(bound["MinHeight"]) is int
    assert character.bind({**GOOD, "MinHeight": "5"})["MinHeight"] == 5  # the minimum itself is allowed


@pytest.mark.parametrize("raw", ["4", "-1", "ten", "10.5"])
def test_bad_integer_is_invalid_parameter(character: ActionSpec, raw: str) -> None:
    with pytest.raises(AliyunError) as exc:
        character.bind({**GOOD, "MinHeight": raw})
    assert (exc.value.code, exc.value.status) == ("InvalidParameter", 400)
    assert "MinHeight" in exc.value.message


@pytest.mark.parametrize("name", ["ImageURL", "MinHeight", "OutputProbability"])
@pytest.mark.parametrize("absent", ["omitted", "empty"])
def test_missing_required(character: ActionSpec, name: str, absent: str) -> None:
    params = {k: v for k, v in GOOD.items() if k != name} if absent == "omitted" else {**GOOD, name: ""}
    with pytest.raises(AliyunError) as exc:
        character.bind(params)
    assert (exc.value.code, exc.value.status) == (f"Missing{name}", 400)


def test_unknown_parameters_ignored(character: ActionSpec) -> None:
    bound = character.bind({**GOOD, "Foo": "bar", "imageurl": "x", "Action": "RecognizeCharacter"})
    assert bound == {"ImageURL": GOOD["ImageURL"], "MinHeight": 10, "OutputProbability": True, "ImageType": None}


def test_raw_body_makes_the_url_optional(registry: Registry) -> None:
    general = registry.route("RecognizeGeneral", "2021-07-07")
    assert general.bind({}) == {"Url": None}
    with pytest.raises(AliyunError) as exc:
        general.bind({"Url": "http://example.com/" + "a" * 2048})
    assert (exc.value.code, exc.value.status) == ("InvalidParameter", 400)


def test_served_values_and_json_objects(registry: Registry) -> None:
    all_text = registry.route("RecognizeAllText", "2021-07-07")
    bound = all_text.bind({"Type": "HandWriting", "AdvancedConfig": '{"OutputRow": true}'})
    assert (bound["Type"], bound["AdvancedConfig"]) == ("HandWriting", {"OutputRow": True})
    with pytest.raises(AliyunError) as exc:  # an Aliyun type the kit cannot honour: Aliyun's own refusal
        all_text.bind({"Type": "IdCard"})
    assert (exc.value.code, exc.value.status) == ("invalidInputParameter", 400) and "IdCard" in exc.value.message
    for bad in ("[1]", "{not json"):
        with pytest.raises(AliyunError) as exc:
            all_text.bind({"Type": "General", "TableConfig": bad})
        assert (exc.value.code, exc.value.status) == ("InvalidParameter", 400)


# --- routing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "version"), [("NoSuchAction", "2019-12-30"), ("recognizecharacter", "2019-12-30"),
                                                 (None, "2019-12-30"), ("", None)])
def test_unknown_action(registry: Registry, action: str | None, version: str | None) -> None:
    with pytest.raises(AliyunError) as exc:
        registry.route(action, version)
    assert (exc.value.code, exc.value.status) == ("InvalidAction.NotFound", 404)


@pytest.mark.parametrize(("action", "version"), [("RecognizeCharacter", "2021-07-07"),
                                                 ("RecognizeGeneral", "2019-12-30"), ("RecognizeCharacter", None)])
def test_known_action_wrong_version(registry: Registry, action: str, version: str | None) -> None:
    with pytest.raises(AliyunError) as exc:
        registry.route(action, version)
    assert (exc.value.code, exc.value.status) == ("InvalidVersion", 400)


def test_routes_each_action_at_its_version(registry: Registry) -> None:
    for spec in registry.specs.values():
        assert registry.route(spec.action, spec.version) is registry.specs[(spec.action, spec.version)]
