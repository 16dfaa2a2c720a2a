"""Mappings: cross-checked against Aliyun's published API metadata, and loader errors (binding and routing:
tests/test_binding.py).

The metadata (`<product>_<version>.json`, `apis.<Action>.parameters[{name, in, schema}]`) sits in the shared
reference folder beside the repository; the cross-check is skipped when that folder is absent.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.actions import CONVERTERS
from proxy.aliyun.errors import Err
from proxy.mappings import ActionSpec, MappingError, ParamSpec, Registry, default_dir, load

METADATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "aliyun-api-docs"

# Parameters a mapping keeps although the current metadata no longer lists them: older SDKs and older
# metadata still send them, so the proxy accepts them. Each must be marked `ignored` with a reason that
# says it is historical. Keep this list small and explicit.
HISTORICAL: dict[tuple[str, str, str], set[str]] = {
    # RecognizeCharacter's ImageType appears in older ocr 2019-12-30 metadata only.
    ("ocr", "2019-12-30", "RecognizeCharacter"): {"ImageType"},
}


def _registry() -> Registry:
    return load(default_dir(), CONVERTERS)


def _specs() -> list[ActionSpec]:
    return sorted(_registry().specs.values(), key=lambda s: (s.product, s.action, s.version))


@cache
def _metadata_file(name: str) -> dict[str, Any]:
    return json.loads((METADATA_DIR / name).read_text(encoding="utf-8"))


# Actions the reference folder has no metadata for, with the parameters their real SDK sends: viapi's
# unified job poller (alibabacloud_viapi20230117 GetAsyncJobResultRequest: job_id -> JobId, form body), and
# openplatform's upload grant (alibabacloud_openplatform20191219 AuthorizeFileUploadRequest: product ->
# Product, region_id -> RegionId, query of an RPC GET; every `*Advance` method sets Product).
FROM_SDK: dict[tuple[str, str, str], list[dict[str, Any]]] = {
    ("viapi", "2023-01-17", "GetAsyncJobResult"): [
        {"name": "JobId", "in": "formData", "schema": {"type": "string", "required": True}}],
    ("openplatform", "2019-12-19", "AuthorizeFileUpload"): [
        {"name": "Product", "in": "query", "schema": {"type": "string", "required": True}},
        {"name": "RegionId", "in": "query", "schema": {"type": "string"}}],
}


def _metadata_params(spec: ActionSpec) -> list[dict[str, Any]]:
    """The action's metadata parameters; fails (not skips) when the file or the action is missing."""
    if (spec.product, spec.version, spec.action) in FROM_SDK:
        return FROM_SDK[(spec.product, spec.version, spec.action)]
    if not METADATA_DIR.is_dir():
        pytest.skip(f"Aliyun API metadata not found at {METADATA_DIR}")
    name = f"{spec.product}_{spec.version}.json"
    assert (METADATA_DIR / name).is_file(), f"no metadata file {name} for {spec.product} {spec.version}"
    apis = _metadata_file(name)["apis"]
    assert spec.action in apis, f"{name} has no action {spec.action!r}"
    params: list[dict[str, Any]] = apis[spec.action].get("parameters") or []
    return params


def _is_raw_body(meta: dict[str, Any]) -> bool:
    return meta.get("in") == "body"


def _number(value: Any) -> float:
    """Metadata numbers are sometimes strings ("5")."""
    return float(value)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return _registry()


# --- 1. cross-check against the metadata -------------------------------------------------------------------


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: f"{s.product}/{s.action}@{s.version}")
class TestAgainstMetadata:
    def test_mapping_parameters_exist_with_exact_casing(self, spec: ActionSpec) -> None:
        meta_names = {p["name"] for p in _metadata_params(spec)}
        historical = HISTORICAL.get((spec.product, spec.version, spec.action), set())
        problems = []
        for name, param in spec.parameters.items():
            if name in meta_names:
                continue
            if name in historical:
                assert param.ignored and "historical" in param.ignored.lower(), (
                    f"{name} is allow-listed as historical but its mapping does not say so: ignored={param.ignored!r}")
                continue
            near = [m for m in meta_names if m.lower() == name.lower()]
            problems.append(f"{name} (metadata spells it {near[0]!r})" if near else name)
        assert not problems, f"mapping parameters not in the metadata: {problems}; metadata has {sorted(meta_names)}"

    def test_historical_allow_list_is_not_stale(self, spec: ActionSpec) -> None:
        meta_names = {p["name"] for p in _metadata_params(spec)}
        historical = HISTORICAL.get((spec.product, spec.version, spec.action), set())
        stale = historical - set(spec.parameters)
        assert not stale, f"allow-listed but not in the mapping: {stale}"
        assert not historical & meta_names, f"allow-listed but in the current metadata: {historical & meta_names}"

    def test_metadata_parameters_are_mapped(self, spec: ActionSpec) -> None:
        missing = []
        for meta in _metadata_params(spec):
            if _is_raw_body(meta) and spec.image is not None and spec.image.raw_body:
                continue  # the raw image body: `image.raw_body: true`, not a named parameter
            if meta["name"] not in spec.parameters:
                missing.append(f"{meta['name']} (in: {meta.get('in')})")
        assert not missing, f"metadata parameters missing from the mapping: {missing}"

    def test_types_required_and_limits_agree(self, spec: ActionSpec) -> None:
        problems: list[str] = []
        for meta in _metadata_params(spec):
            param: ParamSpec | None = spec.parameters.get(meta["name"])
            if param is None:
                continue  # reported by test_metadata_parameters_are_mapped
            problems += _disagreements(meta["name"], meta.get("schema") or {}, param)
        assert not problems, "\n".join(problems)

    def test_raw_body_matches_a_body_parameter(self, spec: ActionSpec) -> None:
        body = [p["name"] for p in _metadata_params(spec) if _is_raw_body(p)]
        raw_body = bool(spec.image and spec.image.raw_body)
        if raw_body:
            assert body, "image.raw_body is true but the metadata has no parameter with in: body"
        else:
            assert not body, f"the metadata takes the image as the body ({body}) but image.raw_body is not true"


def _disagreements(name: str, schema: dict[str, Any], param: ParamSpec) -> list[str]:
    """Type, required, minimum/maximum/maxLength and enum, where the metadata gives them."""
    out: list[str] = []
    meta_type = schema.get("type")
    if meta_type != param.type:
        out.append(f"{name}: type: metadata {meta_type!r}, mapping {param.type!r}")
    meta_required = bool(schema.get("required", False))
    if meta_required != param.required:
        out.append(f"{name}: required: metadata {meta_required}, mapping {param.required}")
    for meta_key, ours in (("minimum", param.minimum), ("maximum", param.maximum), ("maxLength", param.max_length)):
        if schema.get(meta_key) is None:
            continue
        theirs = _number(schema[meta_key])
        if ours is None or float(ours) != theirs:
            out.append(f"{name}: {meta_key}: metadata {schema[meta_key]!r}, mapping {ours!r}")
    if schema.get("enum") is not None:
        theirs_enum = sorted(str(v).lower() for v in schema["enum"])
        ours_enum = sorted(str(v).lower() for v in param.enum) if param.enum is not None else None
        if ours_enum != theirs_enum:
            out.append(f"{name}: enum: metadata {schema['enum']!r}, mapping {param.enum!r}")
    return out


def test_disagreements_are_detected() -> None:
    """The comparison itself catches each kind of drift (so a green cross-check means something)."""
    schema = {"type": "integer", "required": True, "minimum": "5", "maximum": 100, "enum": ["1", "2"]}
    assert _disagreements("X", schema, ParamSpec(type="integer", required=True, minimum=5, maximum=100,
                                                  enum=[1, 2])) == []
    found = _disagreements("X", schema, ParamSpec(type="string", required=False, minimum=4, enum=[1]))
    assert [p.split(":")[1].strip() for p in found] == ["type", "required", "minimum", "maximum", "enum"]
    assert _disagreements("U", {"type": "string", "maxLength": 2048}, ParamSpec(max_length=1024))


def test_every_mapping_is_cross_checked() -> None:
    """Parametrization found the mapping files (an empty list would make the cross-check vacuous)."""
    files = sorted(p.relative_to(default_dir()).as_posix() for p in default_dir().glob("*/*.yaml"))
    assert files and files == sorted(f"{s.product}/{s.action}.yaml" for s in _specs())


# --- 2. the loader names the file and the field ---------------------------------------------------------------

TARGET = "ocr/RecognizeCharacter.yaml"


@pytest.fixture
def mapdir(tmp_path: Path) -> Path:
    """A copy of the real mappings: valid as copied; each test breaks one file."""
    directory = tmp_path / "mappings"
    shutil.copytree(default_dir(), directory)
    return directory


def _read(directory: Path, rel: str = TARGET) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((directory / rel).read_text(encoding="utf-8"))
    return data


def _write(directory: Path, data: dict[str, Any], rel: str = TARGET) -> None:
    (directory / rel).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _load_error(directory: Path) -> str:
    with pytest.raises(MappingError) as exc:
        load(directory, CONVERTERS)
    return str(exc.value)


def test_copied_mappings_load(mapdir: Path) -> None:
    _write(mapdir, _read(mapdir))  # a YAML round trip alone breaks nothing
    assert ("RecognizeCharacter", "2019-12-30") in load(mapdir, CONVERTERS).specs


def test_misspelled_field(mapdir: Path) -> None:
    data = _read(mapdir)
    data["paramters"] = data.pop("parameters")
    _write(mapdir, data)
    message = _load_error(mapdir)
    assert TARGET in message and "paramters" in message, message


def test_misspelled_nested_field(mapdir: Path) -> None:
    data = _read(mapdir)
    data["image"]["max_byte"] = data["image"].pop("max_bytes")
    _write(mapdir, data)
    message = _load_error(mapdir)
    assert TARGET in message and "image.max_byte" in message, message


def test_wrong_type_value(mapdir: Path) -> None:
    data = _read(mapdir)
    data["parameters"]["MinHeight"]["type"] = "integr"
    _write(mapdir, data)
    message = _load_error(mapdir)
    assert TARGET in message and "parameters.MinHeight.type" in message, message


def test_unknown_converter(mapdir: Path) -> None:
    data = _read(mapdir)
    data["converter"] = "ocr.no_such_converter"
    _write(mapdir, data)
    message = _load_error(mapdir)
    assert TARGET in message and "converter" in message and "ocr.no_such_converter" in message, message


@pytest.mark.parametrize(("rel", "field"), [("ocr/RecognizeText.yaml", "action"),
                                            ("ocr-api/RecognizeCharacter.yaml", "product")])
def test_file_name_must_match_the_action(mapdir: Path, rel: str, field: str) -> None:
    (mapdir / TARGET).rename(mapdir / rel)
    message = _load_error(mapdir)
    assert rel in message and field in message, message


def test_invalid_yaml(mapdir: Path) -> None:
    (mapdir / TARGET).write_text(
        'product: ocr\nversion: "2019-12-30"\nparameters:\n  MinHeight: {type: integer\n  ImageURL: {type: string}\n',
        encoding="utf-8")
    message = _load_error(mapdir)
    assert TARGET in message and "MinHeight" in message and "YAML" in message, message


@pytest.mark.parametrize(("rel", "change", "field", "words"), [
    (TARGET, lambda d: d.pop("compare"), "shadow_safe", "compare"),
    (TARGET, lambda d: d["compare"].pop("lines"), "compare", "lines"),
    ("imageseg/SegmentBody.yaml", lambda d: d["compare"].update(lines="prism_words"), "compare", "only"),
    ("imageseg/SegmentBody.yaml", lambda d: d.pop("result_keys"), "result_keys", "matting"),
    (TARGET, lambda d: d["offline"]["params"].pop("MinHeight"), "offline", "MinHeight"),
    (TARGET, lambda d: d["offline"]["params"].update(MinHeight="tall"), "offline", "MinHeight"),
    (TARGET, lambda d: d["offline"]["params"].update(Nope="1"), "offline", "Nope"),
    ("imageseg/SegmentHDCommonImage.yaml", lambda d: d["job"].update(poll="GetJob"), "job.poll", "GetJob"),
    ("ocr-api/RecognizeAllText.yaml", lambda d: d["parameters"]["Type"]["served"]["values"].append("Poster"),
     "parameters.Type", "served"),
])
def test_inconsistent_facts_stop_start_up(mapdir: Path, rel: str, change: Any, field: str, words: str) -> None:
    """Each fact the code reads from a mapping is checked where it is declared, naming the file and field."""
    data = _read(mapdir, rel)
    change(data)
    _write(mapdir, data, rel)
    message = _load_error(mapdir)
    assert rel in message and field in message and words in message, message


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda e: e.update(download="NO_SUCH_ROW"), "image.errors.download", "NO_SUCH_ROW"),
    (lambda e: e.update(download="illegalImageUrl"), "image.errors.download", "not a row of the error table"),
    (lambda e: e.update(timeot="ILLEGAL_IMAGE_URL"), "image.errors.timeot", ""),
])
def test_image_errors_name_rows_of_the_error_table(mapdir: Path, change: Any, field: str, words: str) -> None:
    """A mapping names the row an image failure is answered with by its member name; a code, an unknown
    row or an unknown kind stops start-up naming the file and field."""
    rel = "ocr-api/RecognizeGeneral.yaml"
    data = _read(mapdir, rel)
    change(data["image"]["errors"])
    _write(mapdir, data, rel)
    message = _load_error(mapdir)
    assert rel in message and field in message and words in message, message


def test_image_errors_build_the_products_code(registry: Registry) -> None:
    image = registry.route("RecognizeGeneral", "2021-07-07").image
    assert image is not None and image.errors["timeout"] is Err.ILLEGAL_IMAGE_URL
    err = image.failed(Err.IMAGE_TIMEOUT, "the download timed out")
    assert (err.code, err.status, err.kind) == ("illegalImageUrl", 400, Err.IMAGE_TIMEOUT)
    assert image.failed(Err.IMAGE_FORMAT, "gif").code == "InvalidImage.Format"  # no own code for this kind


def test_not_a_mapping(mapdir: Path) -> None:
    (mapdir / TARGET).write_text("- product\n- ocr\n", encoding="utf-8")
    message = _load_error(mapdir)
    assert TARGET in message, message


def test_error_names_the_bad_file_only(mapdir: Path) -> None:
    data = _read(mapdir, "ocr-api/RecognizeGeneral.yaml")
    data["parameters"]["Url"]["type"] = "integr"
    _write(mapdir, data, "ocr-api/RecognizeGeneral.yaml")
    message = _load_error(mapdir)
    assert "ocr-api/RecognizeGeneral.yaml" in message and "parameters.Url.type" in message, message
    assert TARGET not in message, message
