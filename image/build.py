"""Build Sluice's container image as an OCI archive: `python -m image.build` (and `make image`).

No Docker daemon and no registry: the root filesystem is assembled on this machine from

- the Debian packages pinned in `image/debian-packages.lock` (Debian's Python 3.11 and the shared
  libraries it loads), fetched with `apt-get download` into `${SLUICE_CACHE}/image/debs/`, checked
  against their sha256 and unpacked with `dpkg-deb -x` (no maintainer scripts, no dpkg database);
- the wheels pinned in `image/requirements.lock`, installed by pip with `--require-hashes`,
  binary only and for the image's platform, into `/usr/local/lib/python3.11/dist-packages`;
- Sluice's own wheel (without the twins and the demo) and a `/usr/local/bin/sluice` launcher;

then trimmed of what nothing runs (docs, man pages, C sources, test folders), compiled to .pyc
(the pods' root filesystem is read-only) and written by `image.oci` as
`build/sluice-<version>.oci.tar`, to run as the `nonroot` user (65532:65532) with no shell.

`build()` does nothing when the archive was built from the inputs there are now (a stamp of
their hashes lies beside it), so the test harness may call it freely. Building needs apt-get
and dpkg-deb; measuring the start-up time needs root (`chroot`).
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from image.lock import (
    DEBIAN_LOCK,
    DEBIAN_PACKAGES,
    REFRESH_COMMAND,
    REPOSITORY,
    REQUIREMENTS_LOCK,
    DebianPin,
    read_debian_lock,
)
from image.oci import ImageConfig, ImageDigest, write_oci_archive
from sluice import __version__

NAME = "sluice"
BUILD_DIR = REPOSITORY / "build"
PYTHON_VERSION = "3.11"
INTERPRETER = f"/usr/bin/python{PYTHON_VERSION}"
SITE_PACKAGES = f"usr/local/lib/python{PYTHON_VERSION}/dist-packages"
LAUNCHER = "usr/local/bin/sluice"
#: The "nonroot" user of distroless images, which the operator's runner pods run as
#: (RUNNER_USER in operator/sluice/controller/builders.py).
NONROOT = 65532
HOME = "/home/nonroot"
CERTIFI_BUNDLE = f"/{SITE_PACKAGES}/certifi/cacert.pem"
CONFIG = ImageConfig(
    entrypoint=(f"/{LAUNCHER}",),
    cmd=("operator",),
    user=f"{NONROOT}:{NONROOT}",
    env={
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        # Debian's CA store (ca-certificates) is not in the image: OpenSSL, and so ssl, httpx
        # and aiohttp, trust certifi's bundle instead.
        "SSL_CERT_FILE": CERTIFI_BUNDLE,
        # Every module is compiled at build time; the root filesystem is read-only anyway.
        "PYTHONDONTWRITEBYTECODE": "1",
    },
    # Not the home folder (0700): a cluster that runs the pods as another user can still start.
    working_dir="/",
)
#: Wheels are binary only and for the image's glibc (bookworm's 2.36) and older.
WHEEL_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
#: Paths (relative to the root) no process of the image uses.
PRUNED = (
    "usr/share",
    "usr/bin",
    "usr/sbin",
    "sbin",
    "usr/libexec",
    "usr/lib/binfmt.d",
    "var",
    "usr/lib/x86_64-linux-gnu/gconv",
    f"usr/lib/python{PYTHON_VERSION}/ensurepip",
    f"usr/lib/python{PYTHON_VERSION}/idlelib",
    f"usr/lib/python{PYTHON_VERSION}/lib2to3",
    f"usr/lib/python{PYTHON_VERSION}/pydoc_data",
    f"usr/lib/python{PYTHON_VERSION}/test",
    f"usr/lib/python{PYTHON_VERSION}/turtledemo",
    # Debian's hook for apport, which the image does not have: one failed import per start.
    f"usr/lib/python{PYTHON_VERSION}/sitecustomize.py",
    f"etc/python{PYTHON_VERSION}",
    f"{SITE_PACKAGES}/bin",
    # The asyncio copy of the Kubernetes client (68 MB with its .pyc): Sluice uses the
    # synchronous one, kopf talks to the API server with aiohttp.
    f"{SITE_PACKAGES}/kubernetes/aio",
)
#: Kept from the pruned directories.
KEPT = (INTERPRETER.lstrip("/"),)
#: Inside packages: test folders, and sources of compiled extensions or type stubs.
PRUNED_DIRECTORY_NAMES = frozenset({"tests", "test", "__pycache__"})
PRUNED_SUFFIXES = frozenset({".c", ".h", ".cpp", ".pyx", ".pxd", ".pyi"})
STARTUP_RUNS = 5

LAUNCHER_SCRIPT = f"""#!{INTERPRETER} -s
import sys

from sluice.cli import main

sys.exit(main())
"""
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:{HOME}:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nnonroot:x:{NONROOT}:\n"


class ImageBuildError(RuntimeError):
    """The image cannot be built; the message says why and what to do."""


def reference() -> str:
    """`sluice:<version>`, the name the image is annotated with (as containerd normalises it:
    `docker.io/library/sluice:<version>`)."""
    return f"{NAME}:{__version__}"


def archive_path() -> Path:
    """Where `build()` writes the archive: `build/sluice-<version>.oci.tar`."""
    return BUILD_DIR / f"{NAME}-{__version__}.oci.tar"


def root_path() -> Path:
    """The staging root filesystem of the last build (what the archive's layer holds)."""
    return BUILD_DIR / "image-root"


def cache_dir() -> Path:
    """`${SLUICE_CACHE:-~/.cache/sluice}/image`: downloaded .deb files, shared by clones."""
    base = os.environ.get("SLUICE_CACHE") or str(Path.home() / ".cache" / "sluice")
    return Path(base) / "image"


def build(*, force: bool = False, out: TextIO | None = None) -> Path:
    """Build the archive unless it is up to date with its inputs; return its path.

    Two builds at once (two test sessions, `make image` beside them) take turns on a file lock;
    the second finds the archive up to date."""
    out = sys.stdout if out is None else out
    archive = archive_path()
    stamp = archive.with_name(archive.name + ".inputs")
    if not force and _is_up_to_date(archive, stamp):
        return archive
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with (BUILD_DIR / ".image.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and _is_up_to_date(archive, stamp):
            return archive
        inputs = inputs_digest()
        stamp.unlink(missing_ok=True)
        root = assemble_root(out)
        image = write_oci_archive(
            root,
            archive,
            reference=reference(),
            config=CONFIG,
            owners={HOME: (NONROOT, NONROOT)},
        )
        _report(out, archive, image)
        stamp.write_text(inputs)
    return archive


def _is_up_to_date(archive: Path, stamp: Path) -> bool:
    return archive.exists() and stamp.exists() and stamp.read_text() == inputs_digest()


def assemble_root(out: TextIO) -> Path:
    """The image's root filesystem, made afresh in `root_path()`."""
    pins = _checked_pins()
    _say(out, f"{len(pins)} Debian packages ({DEBIAN_LOCK.relative_to(REPOSITORY)})")
    debs = fetch_debs(pins)
    root = root_path()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    old_umask = os.umask(0o022)
    try:
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(root)])
        _say(out, f"wheels ({REQUIREMENTS_LOCK.relative_to(REPOSITORY)}) and Sluice's own")
        install_wheels(root)
        add_system_files(root)
        prune(root)
        _say(out, "compiling to .pyc")
        compile_python(root)
    finally:
        os.umask(old_umask)
    return root


def inputs_digest() -> str:
    """sha256 of everything the image is built from: the locks, this package, the sources."""
    digest = hashlib.sha256()
    files = [REPOSITORY / "pyproject.toml", REPOSITORY / "README.md"]
    files += sorted((REPOSITORY / "image").glob("*.py"))
    files += [DEBIAN_LOCK, REQUIREMENTS_LOCK]
    files += sorted(
        path
        for path in (REPOSITORY / "operator").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path)
    )
    for path in files:
        digest.update(str(path.relative_to(REPOSITORY)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _checked_pins() -> list[DebianPin]:
    pins = read_debian_lock()
    if sorted(pin.name for pin in pins) != sorted(DEBIAN_PACKAGES):
        raise ImageBuildError(
            f"{DEBIAN_LOCK.name} does not pin the packages image/lock.py lists; "
            f"run `{REFRESH_COMMAND}`"
        )
    return pins


def fetch_debs(pins: Sequence[DebianPin]) -> list[Path]:
    """The .deb of every pin, from the cache or `apt-get download`, checked against its sha256."""
    debs_dir = cache_dir() / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    missing = [pin for pin in pins if _cached_deb(debs_dir, pin) is None]
    if missing:
        with tempfile.TemporaryDirectory(prefix=".download-", dir=debs_dir) as scratch:
            _apt_download(missing, Path(scratch))
            for pin in missing:
                downloaded = list(Path(scratch).glob(_deb_pattern(pin)))
                if len(downloaded) != 1 or _sha256(downloaded[0]) != pin.sha256:
                    raise ImageBuildError(
                        f"the .deb of {pin.name} {pin.version} does not match the sha256 in "
                        f"{DEBIAN_LOCK.name}; run `{REFRESH_COMMAND}`"
                    )
                downloaded[0].replace(debs_dir / downloaded[0].name)
    debs = []
    for pin in pins:
        deb = _cached_deb(debs_dir, pin)
        assert deb is not None
        debs.append(deb)
    return debs


def _deb_pattern(pin: DebianPin) -> str:
    # apt-get download names files NAME_VERSION_ARCH.deb, with an epoch's colon as %3a.
    return f"{pin.name}_{pin.version.replace(':', '%3a')}_*.deb"


def _cached_deb(debs_dir: Path, pin: DebianPin) -> Path | None:
    for deb in debs_dir.glob(_deb_pattern(pin)):
        if _sha256(deb) == pin.sha256:
            return deb
        deb.unlink()
    return None


def _apt_download(pins: Sequence[DebianPin], directory: Path) -> None:
    command = ["apt-get", "download", "-q"]
    if os.geteuid() == 0:
        # Root downloads straight into the directory (apt's _apt user may not write there).
        command += ["-o", "APT::Sandbox::User=root"]
    command += [f"{pin.name}={pin.version}" for pin in pins]
    if _quiet_run(command, directory).returncode == 0:
        return
    # The lists may be missing (a fresh machine) or older than the lock: refresh them once.
    if os.geteuid() == 0:
        _quiet_run(["apt-get", "update", "-qq"], directory)
        failed = _quiet_run(command, directory)
        if failed.returncode == 0:
            return
    else:
        failed = _quiet_run(command, directory)
    for pin in pins:
        shown = _quiet_run(["apt-cache", "show", f"{pin.name}={pin.version}"], directory)
        if f"\nVersion: {pin.version}\n" not in f"\n{shown.stdout}":
            raise ImageBuildError(
                f"Debian no longer serves {pin.name} {pin.version} (pinned in "
                f"{DEBIAN_LOCK.name}); run `{REFRESH_COMMAND}` to pin the current versions"
            )
    last_line = (failed.stderr.strip().splitlines() or ["(no message)"])[-1]
    raise ImageBuildError(f"apt-get download failed: {last_line}")


def install_wheels(root: Path) -> None:
    """The locked wheels, then Sluice's own, into the root's dist-packages."""
    site = root / SITE_PACKAGES
    target = [
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--target",
        str(site),
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        *(option for platform in WHEEL_PLATFORMS for option in ("--platform", platform)),
    ]
    _pip("install", "--require-hashes", "-r", str(REQUIREMENTS_LOCK), *target)
    with tempfile.TemporaryDirectory(prefix="sluice-wheel-") as scratch:
        wheel = build_wheel(Path(scratch))
        _pip("install", str(wheel), *target)
    shutil.rmtree(site / "bin", ignore_errors=True)
    # The local wheel's path on this machine: neither needed nor reproducible.
    for direct_url in site.glob("*.dist-info/direct_url.json"):
        direct_url.unlink()


def build_wheel(scratch: Path) -> Path:
    """Sluice's wheel, built from a clean copy of the sources (setuptools' `build/` of an
    earlier build would otherwise leak stale modules into it); it must not hold the twins or
    the demo."""
    source = scratch / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPOSITORY / name, source / name)
    shutil.copytree(
        REPOSITORY / "operator",
        source / "operator",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"),
    )
    _pip("wheel", "--no-deps", "--wheel-dir", str(scratch / "dist"), str(source))
    (wheel,) = (scratch / "dist").glob("sluice-*.whl")
    with zipfile.ZipFile(wheel) as content:
        leaked = sorted(
            {
                "/".join(name.split("/")[:2])
                for name in content.namelist()
                if name.startswith(("sluice/twins/", "sluice/demo/"))
            }
        )
    if leaked:
        raise ImageBuildError(f"Sluice's wheel holds {', '.join(leaked)}; see pyproject.toml")
    return wheel


def add_system_files(root: Path) -> None:
    """The launcher, the users and groups, an empty /tmp and the nonroot user's home."""
    launcher = root / LAUNCHER
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER_SCRIPT)
    launcher.chmod(0o755)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    for directory, mode in (("tmp", 0o1777), (HOME.lstrip("/"), 0o700)):
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory).chmod(mode)


def prune(root: Path) -> None:
    """Remove what nothing in the image runs (PRUNED, test folders, C sources, stubs)."""
    kept = {path: (root / path).read_bytes() for path in KEPT}
    for path in PRUNED:
        target = root / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    for path, content in kept.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
        (root / path).chmod(0o755)
    for top in (root / f"usr/lib/python{PYTHON_VERSION}", root / SITE_PACKAGES):
        for directory, subdirectories, files in os.walk(top):
            for name in [name for name in subdirectories if name in PRUNED_DIRECTORY_NAMES]:
                shutil.rmtree(Path(directory) / name)
                subdirectories.remove(name)
            for name in files:
                if Path(name).suffix in PRUNED_SUFFIXES:
                    (Path(directory) / name).unlink()
    forget_pruned_files(root / SITE_PACKAGES)


def forget_pruned_files(site: Path) -> None:
    """Drop from each distribution's RECORD the files that are no longer there: it then lists
    what the image holds, and no longer the console scripts, whose shebang names this
    machine's Python (which would make two machines' images differ)."""
    for record in site.glob("*.dist-info/RECORD"):
        with record.open(newline="") as lines:
            rows = [row for row in csv.reader(lines) if row and (site / row[0]).exists()]
        with record.open("w", newline="") as lines:
            csv.writer(lines, lineterminator="\n").writerows(rows)


def compile_python(root: Path) -> None:
    """Every module to .pyc that Python never checks against its source (unchecked-hash):
    deterministic, and nothing to write on a read-only root filesystem.

    The standard library and Sluice keep their sources, so that their tracebacks show lines;
    the dependencies ship as bytecode only (a .pyc where the .py was, which Python imports
    without a source), a quarter of the image."""
    if sys.version_info[:2] != (3, 11):
        raise ImageBuildError(f"building the image needs Python {PYTHON_VERSION} (bytecode)")
    site = root / SITE_PACKAGES
    dependencies = [path for path in sorted(site.iterdir()) if _is_dependency_module(path)]
    _compileall(root, [root / f"usr/lib/python{PYTHON_VERSION}", site / "sluice"])
    _compileall(root, dependencies, sourceless=True)
    for top in dependencies:
        sources = [top] if top.is_file() else sorted(top.rglob("*.py"))
        for source in sources:
            source.unlink()
    forget_pruned_files(site)


def _is_dependency_module(path: Path) -> bool:
    """A top-level module or package of a dependency (not Sluice, not package metadata)."""
    if path.name == "sluice" or path.name.endswith((".dist-info", ".libs")):
        return False
    return path.suffix == ".py" if path.is_file() else any(path.rglob("*.py"))


def _compileall(root: Path, paths: Sequence[Path], *, sourceless: bool = False) -> None:
    compiled = subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            # The paths tracebacks show are the image's, not the staging directory's.
            "-s",
            str(root),
            "-p",
            "/",
            # -b: foo.pyc beside foo.py, where Python looks when there is no source.
            *(["-b"] if sourceless else []),
            *map(str, paths),
        ],
        # Set and frozenset constants are marshalled in hash order.
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    if compiled.returncode != 0:
        raise ImageBuildError(f"compileall failed:\n{compiled.stdout}{compiled.stderr}")


def startup_seconds(root: Path, runs: int = STARTUP_RUNS) -> float:
    """The median time of `sluice --version` run in `root` (chroot, as the nonroot user)."""
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        run_in_root(root, ["sluice", "--version"], check=True)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def run_in_root(
    root: Path,
    command: Sequence[str],
    *,
    check: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command in a root filesystem of the image as its user, with the image's
    environment updated by `env` (needs root, for chroot)."""
    completed = subprocess.run(
        [_chroot(), f"--userspec={NONROOT}:{NONROOT}", str(root), *command],
        env={**CONFIG.env, **(env or {})},
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    if check and completed.returncode != 0:
        raise ImageBuildError(
            f"{' '.join(command)} failed in the image (exit {completed.returncode}):\n"
            f"{completed.stdout}{completed.stderr}"
        )
    return completed


def _chroot() -> str:
    chroot = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin")
    if chroot is None:
        raise ImageBuildError("chroot (coreutils) is missing")
    return chroot


def _report(out: TextIO, archive: Path, image: ImageDigest) -> None:
    _say(out, f"{image.reference} {image.manifest_digest}")
    _say(out, f"layer: {_megabytes(image.layer_size)} uncompressed")
    _say(out, f"archive: {_megabytes(image.archive_size)} {archive.relative_to(REPOSITORY)}")
    if os.geteuid() != 0:
        _say(out, "start-up time: not measured (chroot needs root)")
        return
    try:
        seconds = startup_seconds(root_path())
    except ImageBuildError as error:
        _say(out, f"start-up time: not measured: {str(error).strip().splitlines()[-1]}")
        return
    _say(out, f"start-up time: {seconds:.2f} s (`sluice --version`, median of {STARTUP_RUNS})")


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _say(out: TextIO, message: str) -> None:
    print(f"image: {message}", file=out, flush=True)


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _pip(*arguments: str) -> None:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            *arguments,
        ]
    )


def _run(command: Sequence[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise ImageBuildError(
            f"{' '.join(command[:4])} ... failed (exit {completed.returncode}):\n"
            f"{completed.stdout}{completed.stderr}"
        )


def _quiet_run(command: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m image.build", description=__doc__)
    parser.add_argument("--force", action="store_true", help="build even when up to date")
    args = parser.parse_args(argv)
    try:
        archive = build(force=args.force)
    except ImageBuildError as error:
        print(f"image: {error}", file=sys.stderr)
        return 1
    print(f"image: {archive.relative_to(REPOSITORY)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
