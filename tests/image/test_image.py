"""Sluice's container image: the OCI archive writer (image/oci.py) and the image `make image`
builds (image/build.py), run in its root filesystem with chroot as its user."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.server
import io
import ipaddress
import json
import os
import shutil
import ssl
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from image import build as image_build
from image import lock as image_lock
from image import oci
from sluice import __version__
from tests.cluster import running_under_ci

# --- The OCI writer --------------------------------------------------------------------------

CONFIG = oci.ImageConfig(
    entrypoint=("/usr/bin/tool",),
    cmd=("serve",),
    user="1000:1000",
    env={"PATH": "/usr/bin", "GREETING": "hello"},
    working_dir="/home/app",
)


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_text("#!/usr/bin/tool\n")
    (root / "usr" / "bin" / "tool").chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("hello\n")
    (root / "etc" / "motd").chmod(0o600)
    (root / "etc" / "greeting").symlink_to("motd")
    (root / "home" / "app").mkdir(parents=True)
    (root / "home" / "app").chmod(0o700)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    os.mkfifo(root / "tmp" / "fifo")
    return root


def write_tiny(root: Path, archive: Path, *, compress: bool = False) -> None:
    oci.write_oci_archive(
        root,
        archive,
        reference="tool:1.2",
        config=CONFIG,
        owners={"/home/app": (1000, 1000)},
        mtime=1_700_000_000,
        compress=compress,
    )


@dataclass(frozen=True)
class Layout:
    """An OCI archive read back, one member at a time (the image's is hundreds of MB)."""

    archive: Path

    def names(self) -> list[str]:
        with tarfile.open(self.archive) as packed:
            return packed.getnames()

    def read(self, name: str) -> bytes:
        with tarfile.open(self.archive) as packed:
            member = packed.extractfile(name)
            assert member is not None
            return member.read()

    def json(self, name: str) -> Any:
        return json.loads(self.read(name))

    def blob(self, digest: str) -> bytes:
        return self.read("blobs/sha256/" + digest.removeprefix("sha256:"))

    def manifest(self) -> Any:
        (descriptor,) = self.json("index.json")["manifests"]
        return json.loads(self.blob(descriptor["digest"]))

    def config(self) -> Any:
        return json.loads(self.blob(self.manifest()["config"]["digest"]))

    @contextlib.contextmanager
    def layer(self) -> Iterator[tarfile.TarFile]:
        (descriptor,) = self.manifest()["layers"]
        with tarfile.open(self.archive) as packed:
            blob = packed.extractfile("blobs/sha256/" + descriptor["digest"].split(":")[1])
            assert blob is not None
            with tarfile.open(fileobj=blob, mode="r:*") as layer:
                yield layer


def test_archive_is_an_oci_layout_whose_blobs_match_their_digests(
    tiny_root: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "tool.oci.tar"
    write_tiny(tiny_root, archive)
    layout = Layout(archive)

    assert layout.json("oci-layout") == {"imageLayoutVersion": "1.0.0"}
    blobs = [name for name in layout.names() if name.startswith("blobs/sha256/")]
    assert len(blobs) == 3
    for name in blobs:
        assert hashlib.sha256(layout.read(name)).hexdigest() == name.removeprefix("blobs/sha256/")
    (descriptor,) = layout.json("index.json")["manifests"]
    assert descriptor["annotations"] == {
        "io.containerd.image.name": "docker.io/library/tool:1.2",
        "org.opencontainers.image.ref.name": "1.2",
    }
    assert descriptor["size"] == len(layout.blob(descriptor["digest"]))
    manifest = layout.manifest()
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar"
    ]
    config = layout.config()
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"] == {
        "User": "1000:1000",
        "Env": ["PATH=/usr/bin", "GREETING=hello"],
        "Entrypoint": ["/usr/bin/tool"],
        "Cmd": ["serve"],
        "WorkingDir": "/home/app",
    }
    layer = layout.blob(manifest["layers"][0]["digest"])
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]


def test_two_writes_of_the_same_root_are_byte_identical(tiny_root: Path, tmp_path: Path) -> None:
    write_tiny(tiny_root, tmp_path / "first.tar")
    (tiny_root / "etc" / "motd").touch()  # a newer mtime on disk changes nothing
    write_tiny(tiny_root, tmp_path / "second.tar")

    assert (tmp_path / "first.tar").read_bytes() == (tmp_path / "second.tar").read_bytes()


def test_layer_keeps_modes_links_and_given_owners_and_leaves_out_special_files(
    tiny_root: Path, tmp_path: Path
) -> None:
    write_tiny(tiny_root, tmp_path / "tool.oci.tar")
    with Layout(tmp_path / "tool.oci.tar").layer() as layer:
        members = {member.name: member for member in layer.getmembers()}

    assert list(members) == [
        "etc",
        "etc/greeting",
        "etc/motd",
        "home",
        "home/app",
        "tmp",
        "usr",
        "usr/bin",
        "usr/bin/tool",
    ]
    modes = {name: (m.mode, m.uid, m.gid) for name, m in members.items()}
    assert modes["usr/bin/tool"] == (0o755, 0, 0)
    assert modes["etc/motd"] == (0o600, 0, 0)
    assert modes["home/app"] == (0o700, 1000, 1000)
    assert modes["tmp"] == (0o1777, 0, 0)
    assert members["etc/greeting"].issym() and members["etc/greeting"].linkname == "motd"
    assert {m.mtime for m in members.values()} == {1_700_000_000}


def test_a_compressed_layer_is_gzip_and_its_diff_id_is_the_uncompressed_tar(
    tiny_root: Path, tmp_path: Path
) -> None:
    write_tiny(tiny_root, tmp_path / "plain.tar")
    write_tiny(tiny_root, tmp_path / "packed.tar", compress=True)
    plain, packed = Layout(tmp_path / "plain.tar"), Layout(tmp_path / "packed.tar")

    (layer,) = packed.manifest()["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert packed.config()["rootfs"] == plain.config()["rootfs"]
    with packed.layer() as packed_layer, plain.layer() as plain_layer:
        assert packed_layer.getnames() == plain_layer.getnames()


@pytest.mark.parametrize(
    ("reference", "normalized"),
    [
        ("sluice:0.1.0", "docker.io/library/sluice:0.1.0"),
        ("sluice", "docker.io/library/sluice:latest"),
        ("acme/sluice:1", "docker.io/acme/sluice:1"),
        ("registry.example.com/sluice:0.1.0", "registry.example.com/sluice:0.1.0"),
        ("localhost:5000/sluice", "localhost:5000/sluice:latest"),
    ],
)
def test_references_are_normalised_as_containerd_names_images(
    reference: str, normalized: str
) -> None:
    assert oci.normalize_reference(reference) == normalized


# --- The built image -------------------------------------------------------------------------

TOOLS = ("apt-get", "dpkg-deb", "chroot")


def image_unavailable_reason() -> str | None:
    """Why the image cannot be built and run here, or None when it can."""
    if os.geteuid() != 0:
        return "building and running the image needs root (dpkg-deb, chroot)"
    missing = [
        tool for tool in TOOLS if shutil.which(tool, path=f"{os.environ['PATH']}:/usr/sbin") is None
    ]
    if missing:
        return f"{', '.join(missing)} not found (Debian's apt, dpkg and coreutils)"
    return None


def require_image_tools() -> None:
    """Skip when the image cannot be built here, except under CI, where it must be: fail."""
    reason = image_unavailable_reason()
    if reason is not None:
        if running_under_ci():
            pytest.fail(f"the image tests must run under CI, but: {reason}", pytrace=False)
        pytest.skip(reason)


@dataclass(frozen=True)
class BuiltImage:
    archive: Path
    root: Path
    """The archive's layer, extracted: what a container of the image starts from."""

    def run(
        self, *command: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return image_build.run_in_root(self.root, command, env=env)

    def python(
        self, code: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run("/usr/bin/python3.11", "-c", code, env=env)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    """Sluice's image, built when its inputs changed (the first build downloads into
    SLUICE_CACHE and takes a minute or two), with its layer extracted as root."""
    require_image_tools()
    archive = image_build.build(out=io.StringIO())
    root = tmp_path_factory.mktemp("image") / "root"
    with Layout(archive).layer() as layer:
        layer.extractall(root, numeric_owner=True, filter="fully_trusted")
    yield BuiltImage(archive, root)


def test_image_holds_python_and_the_sluice_command(image: BuiltImage) -> None:
    assert (image.root / "usr/bin/python3.11").is_file()
    launcher = image.root / "usr/local/bin/sluice"
    assert launcher.read_text().startswith("#!/usr/bin/python3.11")
    assert os.access(launcher, os.X_OK)


@pytest.mark.parametrize(
    "path",
    [
        "usr/local/lib/python3.11/dist-packages/sluice/twins",
        "usr/local/lib/python3.11/dist-packages/sluice/demo",
        "usr/local/lib/python3.11/dist-packages/tests",
        "usr/local/lib/python3.11/dist-packages/pip",
        "bin/sh",
        "bin/bash",
        "usr/bin/dash",
        "usr/bin/dpkg",
        "usr/bin/apt-get",
        "usr/bin/perl",
        "usr/share/doc",
    ],
)
def test_image_leaves_out_what_the_operator_and_exports_do_not_run(
    image: BuiltImage, path: str
) -> None:
    assert not (image.root / path).exists()
    assert not (image.root / path).is_symlink()


def test_image_runs_as_the_nonroot_user_65532(image: BuiltImage) -> None:
    passwd = (image.root / "etc/passwd").read_text().splitlines()
    assert "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" in passwd
    assert "nonroot:x:65532:" in (image.root / "etc/group").read_text().splitlines()
    config = Layout(image.archive).config()["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/usr/local/bin/sluice"]
    whoami = image.python("import os, pwd; print(os.getuid(), pwd.getpwuid(os.getuid()).pw_name)")
    assert whoami.stdout == "65532 nonroot\n", whoami.stderr


def test_sluice_version_runs_in_the_image(image: BuiltImage) -> None:
    completed = image.run("sluice", "--version")

    assert completed.returncode == 0, completed.stderr
    assert __version__ in completed.stdout


def test_sluice_export_help_runs_in_the_image(image: BuiltImage) -> None:
    completed = image.run("sluice", "export", "--help")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: sluice export")


def test_the_modules_the_operator_and_exports_run_import_in_the_image(image: BuiltImage) -> None:
    completed = image.python(
        "import sluice.controller.process, sluice.engine.run, sluice.api\n"
        "import psycopg, kubernetes, kopf, sqlite3, aiohttp, httpx\n"
        "print(psycopg.pq.__impl__, sqlite3.connect(':memory:').execute('select 1').fetchone())\n"
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "binary (1,)\n"


def test_both_function_languages_run_sandboxed_in_the_image(image: BuiltImage) -> None:
    """The image's registry accepts Python and JavaScript, and a worker of each runs a function
    in its sandbox as the image's user: it reads no /etc/passwd."""
    null = image.root / "dev/null"
    if not null.exists():  # a container runtime gives every container one; chroot does not
        null.parent.mkdir(exist_ok=True)
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        null.chmod(0o666)  # beyond the umask
    completed = image.python(
        "from sluice.installation import INSTALLED\n"
        "from sluice.functions.transformer import FunctionSettings, FunctionTransformer\n"
        "from sluice.mapping import Purpose\n"
        "from sluice.model.types import parse_type\n"
        "schema = parse_type({'kind': 'object', 'properties': [\n"
        "    {'name': 'name', 'type': {'kind': 'string'}, 'nullable': True}]})\n"
        "sources = {\n"
        "    'Python': 'def transform(p):\\n    return {\"name\": open(\"/etc/passwd\").read()}',\n"
        "    'JavaScript': 'function transform(p) { return {name: p.name.toUpperCase()}; }',\n"
        "}\n"
        "print(sorted(INSTALLED.languages))\n"
        "for language, source in sources.items():\n"
        "    function = FunctionTransformer(language=language, source=source,\n"
        "        preserve_json=False, in_paths=['name'], out_paths=['name'], in_schema=schema,\n"
        "        out_schema=schema, time_layouts=None, settings=FunctionSettings(workers=1))\n"
        "    function.start()\n"
        "    (result,) = function.transform([({'name': 'ada'}, Purpose.CREATE)])\n"
        "    function.close()\n"
        "    print(result)\n"
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "['JavaScript', 'Python']",
        "Python: PermissionError: [Errno 13] Permission denied: '/etc/passwd'",
        "{'name': 'ADA'}",
    ]


def test_the_dependencies_ship_as_bytecode_and_sluice_with_its_sources(image: BuiltImage) -> None:
    site = image.root / "usr/local/lib/python3.11/dist-packages"
    assert (site / "kubernetes/client/api_client.pyc").is_file()
    assert not list((site / "kubernetes").rglob("*.py"))
    assert (site / "sluice/engine/run.py").is_file()


def test_a_duckdb_workspace_is_refused_in_the_image_with_what_to_do(image: BuiltImage) -> None:
    # The demo's pipeline reads a DuckDB file: the image has no DuckDB, so its installation
    # registry refuses the Workspace before anything runs.
    manifests = image.root / "tmp" / "demo"
    shutil.copytree(image_build.REPOSITORY / "examples" / "demo", manifests)
    try:
        completed = image.run(
            "sluice", "export", "-f", "/tmp/demo", "--pipeline", "export-customers"
        )
    finally:
        shutil.rmtree(manifests)
    assert completed.returncode == 1
    output = completed.stdout + completed.stderr
    assert "this installation cannot read DuckDB warehouses" in output
    assert "install sluice[duckdb]" in output


def test_tls_in_the_image_trusts_certifis_bundle(image: BuiltImage) -> None:
    completed = image.python(
        "import ssl, certifi\n"
        "context = ssl.create_default_context()\n"
        "bundle = open(certifi.where()).read().count('BEGIN CERTIFICATE')\n"
        "print(ssl.get_default_verify_paths().cafile == certifi.where(),\n"
        "      len(context.get_ca_certs()) == bundle > 100)\n"
    )

    assert completed.stdout == "True True\n", completed.stderr


HTTPS_CLIENTS = """
import asyncio, ssl, sys, urllib.request
import aiohttp, httpx

url = sys.argv[1]

def urllib_get():
    return urllib.request.urlopen(url).status

async def aiohttp_get():
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status

def httpx_get():
    return httpx.get(url).status_code

for name, get in [("urllib", urllib_get), ("aiohttp", lambda: asyncio.run(aiohttp_get())),
                  ("httpx", httpx_get)]:
    try:
        print(name, get())
    except Exception as error:
        print(name, "untrusted" if "CERTIFICATE_VERIFY_FAILED" in str(error) else repr(error))
"""


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, and the key: a server's certificate
    and, as a bundle, what its clients trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    certificate = (
        x509.CertificateBuilder(subject_name=name, issuer_name=name, public_key=key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = directory / "server.pem", directory / "server.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


@contextlib.contextmanager
def https_server(cert: Path, key: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 answering 200 to every GET; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_https_clients_in_the_image_trust_the_bundle_ssl_cert_file_names(
    image: BuiltImage, tmp_path: Path
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    shutil.copy(cert, image.root / "tmp" / "test-ca.pem")
    with https_server(cert, key) as url:
        # The image's own SSL_CERT_FILE, certifi's bundle, does not hold the test's CA.
        default = image.run("python3.11", "-c", HTTPS_CLIENTS, url)
        trusting = image.run(
            "python3.11", "-c", HTTPS_CLIENTS, url, env={"SSL_CERT_FILE": "/tmp/test-ca.pem"}
        )

    assert default.stdout == "urllib untrusted\naiohttp untrusted\nhttpx untrusted\n", (
        default.stderr
    )
    assert trusting.stdout == "urllib 200\naiohttp 200\nhttpx 200\n", trusting.stderr


def test_every_module_is_precompiled_for_a_read_only_root(image: BuiltImage) -> None:
    missing = [
        str(source.relative_to(image.root))
        for top in ("usr/lib/python3.11", "usr/local/lib/python3.11/dist-packages")
        for source in (image.root / top).rglob("*.py")
        if not (source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc").is_file()
    ]

    assert missing == []


def test_skopeo_reads_the_archive(image: BuiltImage) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (Debian package skopeo)")
    completed = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci-archive:{image.archive}"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["config"]["User"] == "65532:65532"


def test_a_pinned_package_debian_no_longer_serves_stops_the_build_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    require_image_tools()
    monkeypatch.setenv("SLUICE_CACHE", str(tmp_path))
    gone = image_lock.DebianPin("libc6", "2.36-0sluice.gone", "0" * 64)

    with pytest.raises(image_build.ImageBuildError) as raised:
        image_build.fetch_debs([gone])

    assert str(raised.value) == (
        "Debian no longer serves libc6 2.36-0sluice.gone (pinned in debian-packages.lock); "
        "run `make image-lock` to pin the current versions"
    )
