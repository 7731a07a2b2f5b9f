# Two commands: `make run` starts the portal, `make test` runs the whole suite.
# Both need only Python 3.11+ and a C compiler; everything else is installed here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test fuzz debian-packages manage bench-footprint bench-ingest bench-escalation bench-notify bench-classify bench-storm bench-similarity chaos clean

# --no-compile: Python compiles what a process imports when it first imports it, and
# bytecode for the rest (most of twilio's and anthropic's generated API modules) would
# be about 140 MB of the venv that nothing reads.
PIP_INSTALL := $(PY) -m pip install --quiet --no-compile --disable-pip-version-check

$(VENV)/.base: requirements/base.txt requirements/production.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -r requirements/base.txt
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(PIP_INSTALL) -r requirements/dev.txt
	touch $@

run: $(VENV)/.base
	$(PY) -m incident_manager.devstack run

# The real parts tests drive that are Debian packages, not wheels: chromium for the
# browser test (Playwright's own download cannot work offline), Alertmanager as the
# real sender, nginx in front of both tiers (tests/test_transport.py).  Installed when
# we may; otherwise the tests that need them are skipped.
debian-packages:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "not installed: $$missing (the tests that need them will be skipped)"; fi; fi

test: $(VENV)/.dev debian-packages
	$(PY) -m incident_manager.devstack test $(ARGS)

# The fuzz tests (senders' endpoints and parsers, the API against its OpenAPI document)
# with many more examples than `make test` gives them, new ones each run
# (tests/conftest.py's "fuzz" Hypothesis profile; failures are kept under var/hypothesis).
fuzz: $(VENV)/.dev
	HYPOTHESIS_PROFILE=fuzz $(PY) -m incident_manager.devstack test tests/test_fuzz_senders.py tests/test_fuzz_api.py $(ARGS)

# Any manage.py command against the same embedded servers, e.g.
#   make manage ARGS='createapikey ci --scopes incidents:read'
manage: $(VENV)/.base
	$(PY) -m incident_manager.devstack exec $(PY) manage.py $(ARGS)

# The venv from base.txt (built anew, in a temporary folder) and the embedding model's load.
bench-footprint:
	$(PYTHON) bench/footprint.py $(ARGS)

bench-classify: $(VENV)/.dev
	$(PY) -m incident_manager.devstack exec $(PY) bench/classify_eval.py

bench-ingest: $(VENV)/.dev
	$(PY) -m incident_manager.devstack exec $(PY) bench/ingest.py $(ARGS)

bench-similarity: $(VENV)/.dev
	$(PY) -m incident_manager.devstack exec $(PY) bench/similarity_eval.py $(ARGS)

bench-storm: $(VENV)/.dev
	$(PY) -m incident_manager.devstack exec $(PY) bench/storm.py $(ARGS)

bench-notify: $(VENV)/.dev
	$(PY) -m incident_manager.devstack exec $(PY) bench/notify.py $(ARGS)

# N open incidents with due escalations, beat every 2 s: tick time and lag to the outbox row.
bench-escalation: $(VENV)/.dev
	$(PY) -m incident_manager.devstack exec $(PY) bench/escalation.py $(ARGS)

# Faults (killed processes, a PostgreSQL restart, Redis away) under a real Alertmanager's
# storm, on servers and processes of its own: alerts lost, pages missed or doubled, lag.
#   make chaos ARGS=--short    make chaos ARGS='--instances 2'
chaos: $(VENV)/.base
	@command -v prometheus-alertmanager >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null; }
	$(PY) bench/chaos.py $(ARGS)

clean:
	rm -rf $(VENV) var
