"""kopf connects with the very credentials the operator's Kubernetes client loaded."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import Configuration
from kubernetes.config import load_kube_config

from sluice.controller.process import connection_info


def loaded(tmp_path: Path, user: dict[str, Any]) -> Configuration:
    """The client's configuration from a kubeconfig whose cluster has CA data inline."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": _base64("the CA"),
                },
            }
        ],
        "users": [{"name": "test", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    configuration = Configuration()
    load_kube_config(config_file=str(path), client_configuration=configuration)
    return configuration


def test_kopf_gets_the_server_the_ca_and_the_token(tmp_path: Path) -> None:
    configuration = loaded(tmp_path, {"token": "the-token"})
    info = connection_info(configuration)
    assert info.server == "https://127.0.0.1:6443"
    assert Path(str(info.ca_path)).read_text() == "the CA"
    assert not info.insecure
    assert info.as_http_headers() == {"Authorization": "Bearer the-token"}


def test_kopf_gets_the_client_certificate(tmp_path: Path) -> None:
    configuration = loaded(
        tmp_path,
        {
            "client-certificate-data": _base64("the certificate"),
            "client-key-data": _base64("the key"),
        },
    )
    info = connection_info(configuration)
    assert Path(str(info.certificate_path)).read_text() == "the certificate"
    assert Path(str(info.private_key_path)).read_text() == "the key"
    assert info.as_http_headers() == {}


def test_a_token_the_client_refreshed_is_the_one_kopf_logs_in_with(tmp_path: Path) -> None:
    configuration = loaded(tmp_path, {"token": "the-old-token"})

    def rotate(refreshed: Configuration) -> None:
        refreshed.api_key["BearerToken"] = "Bearer the-new-token"

    configuration.refresh_api_key_hook = rotate
    info = connection_info(configuration)
    assert info.as_http_headers() == {"Authorization": "Bearer the-new-token"}


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
