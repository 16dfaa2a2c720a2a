"""The config contract operators and the Helm chart rely on: env names, files, and start-up refusals."""

from __future__ import annotations

import pytest

from proxy.config import ConfigError, load_settings


def test_env_names_are_the_public_contract(monkeypatch, tmp_path):
    monkeypatch.setenv("VISION_PROXY_CALLER_KEYS", "a:secret-of-a, b:sb:tok")
    monkeypatch.setenv("VISION_PROXY_FETCH_ALLOW", "10.0.0.0/8, images.internal")
    monkeypatch.setenv("VISION_PROXY_KIT_URL", "https://abc123.execute-api.cn-northwest-1.amazonaws.com.cn")
    monkeypatch.setenv("VISION_PROXY_AWS_REGION", "cn-north-1")
    monkeypatch.setenv("VISION_PROXY_KIT_ROUTES__OCR", "lite-ocr-v2")
    s = load_settings()
    assert s.caller_keys["a"].secret.get_secret_value() == "secret-of-a"
    assert s.caller_keys["b"].security_token.get_secret_value() == "tok"
    assert s.fetch_allow == ["10.0.0.0/8", "images.internal"]
    assert s.aws_region == "cn-north-1"
    assert s.kit_route_url("ocr") == "https://abc123.execute-api.cn-northwest-1.amazonaws.com.cn/prod/lite-ocr-v2"
    assert "secret-of-a" not in repr(s) and "secret-of-a" not in str(s.model_dump(mode="json"))


def test_caller_keys_from_a_mounted_secret_file(monkeypatch, tmp_path):
    secret = tmp_path / "keys"
    secret.write_text("# mounted from a Kubernetes Secret\nk1:s1\nk2:s2\n")
    monkeypatch.setenv("VISION_PROXY_CALLER_KEYS", str(secret))
    assert set(load_settings().caller_keys) == {"k1", "k2"}


def test_yaml_file_below_env_below_flags(monkeypatch, tmp_path):
    config = tmp_path / "proxy.yaml"
    config.write_text("port: 9001\naws_region: cn-north-1\nimage_mode: pass-url\n")
    monkeypatch.setenv("VISION_PROXY_AWS_REGION", "cn-northwest-1")
    s = load_settings(config, port=9002)
    assert (s.port, s.aws_region, s.image_mode) == (9002, "cn-northwest-1", "pass-url")


@pytest.mark.parametrize(("env", "value", "named"), [
    ("VISION_PROXY_PORT", "eighty", "port (VISION_PROXY_PORT)"),
    ("VISION_PROXY_CALLER_KEYS", "no-colon-here,x", "caller_keys (VISION_PROXY_CALLER_KEYS)"),
    ("VISION_PROXY_FETCH_ALLOW", "10.0.0.300/8", "fetch_allow (VISION_PROXY_FETCH_ALLOW)"),
    ("VISION_PROXY_KIT_URL", "https://abc.execute-api.cn-northwest-1.amazonaws.com.cn/prod", "kit_url"),
    ("VISION_PROXY_IMAGE_MODE", "teleport", "image_mode"),
])
def test_wrong_values_name_the_key(monkeypatch, env, value, named):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert named in str(exc.value)


def test_no_keys_refused_off_loopback():
    with pytest.raises(ConfigError) as exc:
        load_settings(host="0.0.0.0")
    assert "VISION_PROXY_CALLER_KEYS" in str(exc.value)
    assert load_settings(host="0.0.0.0", caller_keys="k:s").host == "0.0.0.0"
    assert load_settings(host="127.0.0.1").caller_keys == {}
