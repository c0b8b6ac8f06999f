"""Two places, two installs: the locks agree with pyproject.toml, and the wheel
installed from each place's lock into an empty virtualenv runs that place.

The wheel test builds the wheel and sdist from a copy of the tracked files,
installs `intake[server]` from requirements/server.txt and
`intake[workstation]` from requirements/workstation.txt into two empty
virtualenvs (with --require-hashes), and carries a submission from one to the
other: the server venv serves the form in four languages and exports a
bundle, the workstation venv decrypts it, imports it into a vault and serves
the desk.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests
from babel.support import Translations
from packaging.requirements import Requirement
from support import CSRF, free_port

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKS = {"server": ["server"], "workstation": ["workstation"],
         "dev": ["server", "workstation", "test"]}
# Each place's lock; development's (both places and the test tools) at the root.
LOCK_FILES = {"server": "requirements/server.txt",
              "workstation": "requirements/workstation.txt", "dev": "requirements.txt"}
PIN = re.compile(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;\\]+)", re.M)
SERVER_ONLY = ("gunicorn", "sqlalchemy", "psycopg", "magic", "pikepdf", "pillow_heif",
               "mutagen", "lxml", "pyotp")
# The vault's search stack: stemmers, morphological dictionaries, language detection.
WORKSTATION_ONLY = ("snowballstemmer", "pymorphy3", "pymorphy3_dicts_uk", "pymorphy3_dicts_ru",
                    "hunspell", "lingua")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def pins(lock: Path) -> dict[str, str]:
    return {_name(m.group(1)): m.group(3) for m in PIN.finditer(lock.read_text())}


def build_tools() -> list[Requirement]:
    text = (ROOT / "requirements" / "build.in").read_text()
    return [Requirement(line) for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def wanted(extras: list[str]) -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    return reqs + build_tools()


@pytest.mark.parametrize("place", sorted(LOCKS))
def test_each_lock_pins_what_pyproject_asks_for_with_hashes(place):
    lock = ROOT / LOCK_FILES[place]
    pinned = pins(lock)
    for req in wanted(LOCKS[place]):
        assert _name(req.name) in pinned, f"{lock.name} lacks {req.name}: run `make lock`"
        assert req.specifier.contains(pinned[_name(req.name)]), \
            f"{lock.name} pins {req.name}=={pinned[_name(req.name)]}, pyproject asks {req}"
    # Every requirement, transitive ones included, is pinned and hashed.
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 1)[1].strip())
    entries = [e for e in entries if not e.startswith("#")]
    assert entries and all(PIN.match(e) and "--hash=sha256:" in e for e in entries), place


def test_the_build_pins_agree():
    build = {_name(Requirement(r).name): str(Requirement(r).specifier)
             for r in PYPROJECT["build-system"]["requires"]}
    assert build == {_name(r.name): str(r.specifier) for r in build_tools()}


def test_a_place_never_carries_the_other_places_libraries():
    server, workstation = pins(ROOT / "requirements" / "server.txt"), \
        pins(ROOT / "requirements" / "workstation.txt")
    assert not {"gunicorn", "sqlalchemy", "psycopg", "python-magic", "pikepdf", "pillow-heif",
                "mutagen", "lxml", "pyotp"} & workstation.keys()
    assert not {"snowballstemmer", "pymorphy3", "pymorphy3-dicts-uk", "pymorphy3-dicts-ru",
                "chunspell", "lingua-language-detector"} & server.keys()


def test_the_locks_are_what_make_lock_makes(tmp_path):
    """Compiled again from pyproject.toml with each lock's own pins as the
    preference, every lock comes out the same: pyproject and the locks agree."""
    uv = Path(sys.executable).with_name("uv")
    if not uv.exists():
        pytest.skip("uv is in the dev lock; `make test` installs it")
    makefile = (ROOT / "Makefile").read_text()
    for place, extras in LOCKS.items():
        lock = tmp_path / f"{place}.txt"
        shutil.copy(ROOT / LOCK_FILES[place], lock)
        command = [str(uv), "pip", "compile", "--quiet", "--universal", "--python-version",
                   "3.11", "--generate-hashes", "--custom-compile-command", "make lock",
                   "pyproject.toml", "requirements/build.in",
                   *(a for e in extras for a in ("--extra", e)), "-o", str(lock)]
        assert f"-o {LOCK_FILES[place]}" in makefile
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")})
        if done.returncode != 0 and "Failed to fetch" in done.stderr \
                and os.environ.get("CI") != "true":
            pytest.skip("the package index cannot be reached")
        assert done.returncode == 0, done.stderr
        assert lock.read_text() == (ROOT / LOCK_FILES[place]).read_text(), \
            f"{LOCK_FILES[place]} is not what `make lock` makes from pyproject.toml"


def test_the_package_list_is_whole():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "intake").rglob("__init__.py") if "__pycache__" not in p.parts}
    assert found | {"intake.templates", "intake.translations"} == listed


# -- the wheel, installed from each place's lock ------------------------------------------

def _run(args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The wheel and sdist, built from a copy of the tracked files (a build in
    the checkout would leave build/ and egg-info behind)."""
    src = tmp_path_factory.mktemp("source")
    files = _run(["git", "ls-files", "-z"], cwd=ROOT).stdout.split("\0")
    if not files or files == [""]:
        pytest.skip("not a git checkout")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
          "--outdir", str(dist), str(src)])
    return dist


def _venv(base: Path, place: str, wheel: Path) -> Path:
    venv = base / f"{place}-venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "--require-hashes", "-r", str(ROOT / LOCK_FILES[place])])
    _run([*pip, "--no-deps", str(wheel)])
    return venv


@pytest.fixture(scope="module")
def venvs(built, tmp_path_factory) -> dict[str, Path]:
    (wheel,) = built.glob("intake-*.whl")
    base = tmp_path_factory.mktemp("venvs")
    return {place: _venv(base, place, wheel) for place in ("server", "workstation")}


def test_the_wheel_and_sdist_carry_templates_translations_and_static_files(built):
    import tarfile
    import zipfile

    (wheel,) = built.glob("intake-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for lang in ("uk", "ru", "be", "en"):
        assert f"intake/translations/{lang}/LC_MESSAGES/messages.mo" in names
    assert {"intake/templates/submit.html", "intake/templates/vault/list.html",
            "intake/templates/static/style.css", "intake/templates/vault/static/vault.css",
            "intake/server/wordlists/eff_large.txt"} <= names
    (sdist,) = built.glob("intake-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"setup.py", "translations/uk/LC_MESSAGES/messages.po", "templates/submit.html",
            "requirements/server.txt"} <= members


def _imports(venv: Path, module: str) -> bool:
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {module}"],
                           capture_output=True, timeout=60)
    return probe.returncode == 0


def test_each_place_carries_only_its_own_libraries(venvs):
    for module in SERVER_ONLY:
        assert not _imports(venvs["workstation"], module), module
        assert _imports(venvs["server"], module), module
    for module in WORKSTATION_ONLY:
        assert not _imports(venvs["server"], module), module
        assert _imports(venvs["workstation"], module), module


def test_a_workstation_install_says_which_commands_are_the_servers(venvs):
    intake = str(venvs["workstation"] / "bin" / "intake")
    listing = _run([intake, "--help"]).stdout
    assert "needs intake[server]" in listing and "vault" in listing
    refused = subprocess.run([intake, "serve"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "'serve' is a server command" in refused.stderr
    assert "intake[server]" in refused.stderr


def _wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {log.read_text()}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {log.read_text()}")



def _serve(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, 15)
    process.wait(30)


def test_a_submission_goes_from_a_server_install_to_a_workstation_install(venvs, tmp_path):
    server, workstation = (str(venvs[p] / "bin" / "intake") for p in ("server", "workstation"))
    passfile = tmp_path / "passphrase"
    passfile.write_text("a passphrase for the wheel test\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg"))
    _run([workstation, "keygen", "--name", "team", "--out", str(tmp_path / "ws"),
          "--passphrase-file", str(passfile)], env=env)
    keys = tmp_path / "keys"
    keys.mkdir()
    shutil.move(tmp_path / "ws" / "team.pub", keys / "team.pub")
    env.update(INTAKE_DATA_DIR=str(tmp_path / "data"), INTAKE_KEYS_DIR=str(keys),
               INTAKE_KDF_OPSLIMIT="1", INTAKE_KDF_MEMLIMIT="8192")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serving = _serve([server, "serve", "--port", str(port), "--workers", "1"], env,
                     tmp_path / "serve.log")
    try:
        _wait_for(url + "/", serving, tmp_path / "serve.log")
        with requests.Session() as witness:
            for lang in ("uk", "ru", "be", "en"):
                page = witness.get(f"{url}/?lang={lang}", timeout=10).text
                said = Translations.load(str(ROOT / "translations"), [lang]).gettext(
                    "What do you want to tell us?")
                assert f'lang="{lang}"' in page and said in page, lang
            token = CSRF.search(witness.get(url + "/", timeout=10).text).group(1)
            receipt = witness.post(url + "/submit", timeout=60, data={
                "csrf_token": token, "testimony": "Тестування з колеса.",
                "keep_original": "y"},
                files={"files": ("note.txt", b"a note\n", "text/plain")})
            assert receipt.status_code == 200, receipt.text
    finally:
        _stop(serving)
    bundle = tmp_path / "bundle.tar"
    _run([server, "queue", "export", "--out", str(bundle)], env=env)

    ws_env = {k: v for k, v in env.items() if not k.startswith("INTAKE_")}
    out = _run([workstation, "decrypt", str(bundle), "--key", str(tmp_path / "ws" / "team.key"),
                "--passphrase-file", str(passfile), "--out", str(tmp_path / "out")],
               env=ws_env).stdout
    assert "2 decrypted, 0 damaged" in out
    texts = list((tmp_path / "out").rglob("testimony.txt"))
    assert [t.read_text() for t in texts] == ["Тестування з колеса."]
    vault = tmp_path / "vault"
    out = _run([workstation, "vault", "import", str(bundle), "--key",
                str(tmp_path / "ws" / "team.key"), "--passphrase-file", str(passfile),
                "--vault", str(vault)], env=ws_env).stdout
    assert out.startswith("2 new"), out  # the testimony and the file
    # Every vault command runs in the workstation install.
    (folder,) = (tmp_path / "out").iterdir()
    submission = folder.name.split("_", 1)[1]
    in_vault = ["--vault", str(vault)]
    # Commands that write to the custody log sign it: they take the team key.
    signed = [*in_vault, "--key", str(tmp_path / "ws" / "team.key"),
              "--passphrase-file", str(passfile)]
    vault_cmd = [workstation, "vault"]
    assert "custody log intact" in _run([*vault_cmd, "verify-log", *in_vault], env=ws_env).stdout
    message = tmp_path / "reply.txt"
    message.write_text("Дякуємо. Ми прочитали.\n")
    _run([*vault_cmd, "reply", submission, "--message-file", str(message), *signed],
         env=ws_env)
    out = _run([*vault_cmd, "export-replies", "--out", str(tmp_path / "replies.tar"),
                *signed], env=ws_env).stdout
    assert "wrote 1 reply" in out
    _run([*vault_cmd, "case-add", "case-1", submission, *signed], env=ws_env)
    out = _run([*vault_cmd, "export-case", "case-1", "--out", str(tmp_path / "case"),
                *signed], env=ws_env).stdout
    assert "sha256sum -c SHA256SUMS" in out

    port = free_port()
    desk = _serve([workstation, "vault", "serve", "--port", str(port), "--vault", str(vault)],
                  ws_env, tmp_path / "desk.log")
    try:
        _wait_for(f"http://127.0.0.1:{port}/", desk, tmp_path / "desk.log")
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 403
        # Only the address it printed, with this run's token, opens the desk.
        address = re.search(r"http://\S+token=\S+", (tmp_path / "desk.log").read_text())[0]
        listing = requests.Session().get(address, timeout=10)
        assert listing.status_code == 200 and "Triage desk" in listing.text
        assert "Тестування з колеса" in listing.text or "submission/" in listing.text
    finally:
        _stop(desk)
    out = _run([workstation, "vault", "delete", submission, "--reason", "test", "--yes",
                *signed], env=ws_env).stdout
    assert f"deleted submission {submission}" in out
