"""A PEP 517 build backend in the standard library alone, for `pip install ./sdk/python` offline.

pip builds a package in an isolated environment and installs its build
requirements there from an index; setuptools is in the venv but not in
that environment, so with no index a setuptools backend cannot even start.
This backend needs nothing: it writes the wheel (a zip of msb/ and its
metadata, PEP 427) and the sdist (a tar.gz of the sources) itself.
"""
import base64
import hashlib
import io
import os
import tarfile
import zipfile

NAME = "msb"
VERSION = "0.1.0"
HERE = os.path.dirname(os.path.abspath(__file__))
TAG = "py3-none-any"


def _metadata() -> str:
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
            "Summary: Drive msb's microVM sandboxes from Python (sync and asyncio), through msb serve\n"
            "License: Apache-2.0\nRequires-Python: >=3.9\n"
            "Classifier: Programming Language :: Python :: 3\nClassifier: Typing :: Typed\n"
            "Description-Content-Type: text/markdown\n\n" + readme)


def _package_files():
    pkg = os.path.join(HERE, NAME)
    for fn in sorted(os.listdir(pkg)):
        if fn.endswith(".py") or fn == "py.typed":
            yield f"{NAME}/{fn}", os.path.join(pkg, fn)


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def _dist_info(files):
    di = f"{NAME}-{VERSION}.dist-info"
    files[f"{di}/METADATA"] = _metadata().encode()
    files[f"{di}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: msb_build\nRoot-Is-Purelib: true\nTag: {TAG}\n".encode()
    return di


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    files = {}
    di = _dist_info(files)
    os.makedirs(os.path.join(metadata_directory, di), exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(metadata_directory, name), "wb") as f:
            f.write(data)
    return di


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {}
    for arc, path in _package_files():
        with open(path, "rb") as f:
            files[arc] = f.read()
    di = _dist_info(files)
    record = "".join(f"{n},{_digest(d)},{len(d)}\n" for n, d in files.items()) + f"{di}/RECORD,,\n"
    files[f"{di}/RECORD"] = record.encode()
    whl = f"{NAME}-{VERSION}-{TAG}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, whl), "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(zipfile.ZipInfo(n, date_time=(2026, 1, 1, 0, 0, 0)), d)
    return whl


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{VERSION}"
    out = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(out, "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "msb_build.py"] + [a for a, _ in _package_files()]:
            t.add(os.path.join(HERE, rel), arcname=f"{base}/{rel}")
        pkg_info = _metadata().encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(pkg_info)
        t.addfile(ti, io.BytesIO(pkg_info))
    return os.path.basename(out)
