"""Load `mappings/<product>/<Action>.yaml` into typed action specs, and bind request parameters to them.

A mapping is the one place for an Aliyun action's facts: its parameters (exact casing, type, required,
default, limits, and those accepted without effect, with the reason), its image source and limits, the
kit route, the converter that shapes the answer, whether the answer is an async job and where result
images are, how the shadow compares two answers, and the parameters an offline comparison sends. Code
reads these from the spec and never keys on an action's name. A bad file stops start-up with the file
and the field named.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError, model_validator

from .aliyun.errors import AliyunError, Err, ImageKind, invalid, missing

ImageFormat = Literal["jpeg", "png", "bmp", "gif", "webp", "tiff"]
TRUE, FALSE = "true", "false"


class ServedSpec(BaseModel):
    """The allowed values the kit can honour; another allowed value is refused (ocr-api's invalidInputParameter)."""

    model_config = ConfigDict(extra="forbid")

    values: list[Any]
    why: str = Field(description="why the other values are refused, told to the caller")


class ParamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "integer", "number", "boolean", "object"] = "string"  # object: a JSON object string
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    enum: list[Any] | None = None
    max_length: int | None = None
    ignored: str | None = Field(None, description="accepted but not honoured by the kit: why")
    served: ServedSpec | None = None

    @model_validator(mode="after")
    def _served_within_enum(self) -> ParamSpec:
        if self.served and self.enum is not None and not set(self.served.values) <= set(self.enum):
            raise ValueError(f"served values {self.served.values} are not all in enum")
        return self

    def coerce(self, name: str, raw: str) -> Any:
        """Booleans case-insensitively, integers and numbers from strings, then the limits."""
        value: Any
        if self.type == "boolean":
            if raw.lower() not in (TRUE, FALSE):
                raise invalid(name, "Expected true or false.")
            value = raw.lower() == TRUE
        elif self.type == "object":  # the SDKs send a structure as its JSON text ("shrink" style)
            try:
                value = json.loads(raw)
            except ValueError:
                raise invalid(name, "Expected a JSON object.") from None
            if not isinstance(value, dict):
                raise invalid(name, "Expected a JSON object.")
        elif self.type in ("integer", "number"):
            try:
                value = int(raw) if self.type == "integer" else float(raw)
            except ValueError:
                raise invalid(name, f"Expected an {self.type}.") from None
            if self.minimum is not None and value < self.minimum:
                raise invalid(name, f"The minimum is {self.minimum:g}.")
            if self.maximum is not None and value > self.maximum:
                raise invalid(name, f"The maximum is {self.maximum:g}.")
        else:
            value = raw
            if self.max_length is not None and len(raw) > self.max_length:
                raise invalid(name, f"The maximum length is {self.max_length}.")
        if self.enum is not None and value not in self.enum:
            raise invalid(name, f"Allowed values: {', '.join(map(str, self.enum))}.")
        if self.served is not None and value not in self.served.values:
            served = ", ".join(map(str, self.served.values))
            raise Err.INPUT_NOT_SERVED(f"{name}={value} is not supported by this service ({served} are): "
                                       f"{self.served.why}")
        return value


def _err_row(name: Any) -> Err:
    """A mapping names a row of the error table by its member name (`ILLEGAL_IMAGE_URL`), never by a code."""
    if isinstance(name, Err):
        return name
    if not isinstance(name, str) or name not in Err.__members__:
        raise ValueError(f"{name!r} is not a row of the error table (proxy/aliyun/errors.py Err)")
    return Err[name]


ErrRow = Annotated[Err, BeforeValidator(_err_row), PlainSerializer(lambda err: err.name)]


class ImageSpec(BaseModel):
    """Where the image comes from and Aliyun's documented input limits for this action."""

    model_config = ConfigDict(extra="forbid")

    url_param: str
    raw_body: bool = False
    formats: list[ImageFormat]
    max_bytes: int
    min_side: int = Field(1, description="smallest allowed side, inclusive")
    max_side: int = Field(description="largest allowed side, inclusive")
    max_short_side: int | None = Field(None, description="largest allowed shorter side, inclusive")
    reduce_short_side: int | None = Field(None, description="a longer shorter side is first resized down to this, "
                                                            "as Aliyun does for this action")
    max_aspect: float | None = None
    errors: dict[ImageKind, ErrRow] = Field({}, description="the row an image failure of this kind is answered "
                                                       "with, when the product has its own code for it")

    def failed(self, kind: Err, detail: str) -> AliyunError:
        """An image failure (`kind`, a row with an image_kind) as this action answers it."""
        return kind.answered_as(self.errors.get(kind.image_kind) if kind.image_kind else None, detail)


Family = Literal["ocr", "matting", "super_resolution"]
KitRoute = Literal["ocr", "segmentation", "super_resolution"]


class CompareSpec(BaseModel):
    """How the shadow compares two answers of this action: by family, and for OCR where the lines are."""

    model_config = ConfigDict(extra="forbid")

    family: Family
    lines: Literal["text_rectangles", "prism_words", "all_text_blocks"] | None = Field(
        None, description="OCR only: Data.Results[] with TextRectangles (ocr 2019-12-30), the "
                          "prism_wordsInfo[] of Data's JSON string (ocr-api), or RecognizeAllText's "
                          "Data.SubImages[].BlockInfo.BlockDetails[]")

    @model_validator(mode="after")
    def _lines_for_ocr_only(self) -> CompareSpec:
        if (self.family == "ocr") != (self.lines is not None):
            raise ValueError("lines is required for family ocr, and only for it")
        return self


class JobSpec(BaseModel):
    """An asynchronous action: the answer carries only the JobId (its RequestId); `poll` reports the job."""

    model_config = ConfigDict(extra="forbid")

    poll: str = Field(description="the action, at the same product and version, that returns the job's status")


class OfflineSpec(BaseModel):
    """`vision-proxy compare`: the parameters sent besides the image, set as an app typically would."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, str] = {}
    default: bool = False  # compared when `vision-proxy compare` is given no --actions


class ActionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: Literal["ocr", "ocr-api", "imageseg", "imageenhan", "viapi", "openplatform"]
    version: str
    action: str
    kit_route: KitRoute | None = None
    converter: str
    job: JobSpec | None = None
    result_keys: list[str] = Field([], description="keys holding result-image URLs: in Data, or in a job's Result")
    shadow_safe: bool = False
    compare: CompareSpec | None = None
    offline: OfflineSpec = OfflineSpec()
    parameters: dict[str, ParamSpec] = {}
    image: ImageSpec | None = None
    notes: str = ""

    @model_validator(mode="after")
    def _image_param_declared(self) -> ActionSpec:
        if self.image and self.image.url_param not in self.parameters:
            raise ValueError(f"image.url_param {self.image.url_param!r} is not among parameters")
        return self

    @model_validator(mode="after")
    def _comparable(self) -> ActionSpec:
        if self.shadow_safe and self.compare is None:
            raise ValueError("shadow_safe needs compare: a mirrored call must have a way to be compared")
        if self.compare and self.compare.family != "ocr" and not self.result_keys:
            raise ValueError(f"compare.family {self.compare.family} compares result images: name result_keys")
        return self

    @model_validator(mode="after")
    def _offline_params_bind(self) -> ActionSpec:
        for name, raw in self.offline.params.items():
            if name not in self.parameters:
                raise ValueError(f"offline.params: {name!r} is not among parameters")
            try:
                self.parameters[name].coerce(name, raw)
            except AliyunError as exc:
                raise ValueError(f"offline.params: {exc.message}") from None
        if self.image:
            unset = [n for n, p in self.parameters.items() if p.required and p.default is None
                     and n != self.image.url_param and n not in self.offline.params]
            if unset:
                raise ValueError(f"offline.params must set the required parameters {unset}")
        return self

    def bind(self, params: dict[str, str]) -> dict[str, Any]:
        """Typed parameters for the converter; unknown names are ignored, as Aliyun does."""
        bound: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            raw = params.get(name)
            if raw is None or raw == "":
                if spec.required and not self._image_elsewhere(name):
                    raise missing(name)
                bound[name] = spec.default
            else:
                bound[name] = spec.coerce(name, raw)
        return bound

    def _image_elsewhere(self, name: str) -> bool:
        """The URL parameter is optional where the image may come as the raw body instead."""
        return bool(self.image and self.image.raw_body and name == self.image.url_param)


class MappingError(Exception):
    """A mapping file is wrong; the message names the file and the field."""


Converter = Callable[..., Any]


class Registry:
    """All actions, routed by (Action, Version) as Aliyun's gateway does."""

    def __init__(self, specs: Iterable[ActionSpec]) -> None:
        self.specs = {(s.action, s.version): s for s in specs}
        self.actions = {s.action for s in self.specs.values()}

    def route(self, action: str | None, version: str | None) -> ActionSpec:
        spec = self.specs.get((action or "", version or ""))
        if spec is not None:
            return spec
        if action in self.actions:
            raise Err.INVALID_VERSION()
        raise Err.INVALID_ACTION()


def default_dir() -> Path:
    here = Path(__file__).resolve().parent
    repo = here.parent / "mappings"
    return repo if repo.is_dir() else here / "_mappings"


def load(directory: Path, converters: dict[str, Converter] | None) -> Registry:
    """Every mapping under `directory`. `converters` None: the facts only (reports read them), converter names
    are not checked; the proxy itself always passes its converters."""
    specs: list[ActionSpec] = []
    files = sorted(directory.glob("*/*.yaml"))
    if not files:
        raise MappingError(f"{directory}: no mapping files (*/*.yaml)")
    for path in files:
        where = path.relative_to(directory)
        try:
            spec = ActionSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            raise MappingError(f"mappings/{where}: not valid YAML: {exc}") from None
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors())
            raise MappingError(f"mappings/{where}: {fields}") from None
        if converters is not None and spec.converter not in converters:
            raise MappingError(f"mappings/{where}: converter: unknown converter {spec.converter!r}")
        if (path.parent.name, path.stem) != (spec.product, spec.action):
            raise MappingError(f"mappings/{where}: product/action: file must be {spec.product}/{spec.action}.yaml")
        specs.append(spec)
    registry = Registry(specs)
    for spec in specs:
        if spec.job and (spec.job.poll, spec.version) not in registry.specs:
            raise MappingError(f"mappings/{spec.product}/{spec.action}.yaml: job.poll: no mapping for "
                               f"{spec.job.poll} {spec.version}")
    return registry
