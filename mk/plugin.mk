# QGIS plugin: `make plugin` -> dist/senclip_qgis.zip, `make install-plugin` -> a QGIS profile.
# The zip carries the backend source (pure Python) in senclip_qgis/backend_src/, which the
# plugin's installer pip-installs into the backend venv; nothing compiled goes in.
PLUGIN := senclip_qgis
PLUGIN_STAGE := build/plugin
PLUGIN_ZIP := dist/$(PLUGIN).zip
QGIS_PROFILE ?= default
QGIS_PROFILE_DIR ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/$(QGIS_PROFILE)

.PHONY: plugin install-plugin test-plugin

plugin: $(PLUGIN_ZIP)  ## build the installable QGIS plugin zip (dist/senclip_qgis.zip)

$(PLUGIN_ZIP): metadata.txt LICENSE $(shell find $(PLUGIN) backend/senclip backend/pyproject.toml -type f -not -name '*.pyc' -not -path '*__pycache__*' 2>/dev/null)
	rm -rf $(PLUGIN_STAGE) && mkdir -p $(PLUGIN_STAGE)/$(PLUGIN)/backend_src dist
	cp -R $(PLUGIN)/. $(PLUGIN_STAGE)/$(PLUGIN)/
	rm -rf $(PLUGIN_STAGE)/$(PLUGIN)/backend_src/* && cp -R backend/senclip backend/pyproject.toml $(PLUGIN_STAGE)/$(PLUGIN)/backend_src/
	test ! -f backend/README.md || cp backend/README.md $(PLUGIN_STAGE)/$(PLUGIN)/backend_src/
	rm -f $(PLUGIN_STAGE)/$(PLUGIN)/metadata.txt && cp metadata.txt LICENSE $(PLUGIN_STAGE)/$(PLUGIN)/
	find $(PLUGIN_STAGE) \( -name '__pycache__' -o -name '*.egg-info' -o -name '.pytest_cache' \) -prune -exec rm -rf {} + ; \
	find $(PLUGIN_STAGE) -name '*.py[co]' -delete
	rm -f $@.tmp && cd $(PLUGIN_STAGE) && $(abspath $(PY)) -m zipfile -c $(abspath $@.tmp) $(PLUGIN)
	mv $@.tmp $@
	@ls -l $@

install-plugin: $(PLUGIN_ZIP)  ## unzip the plugin into a QGIS profile (QGIS_PROFILE=default) and enable it
	mkdir -p $(QGIS_PROFILE_DIR)/python/plugins
	rm -rf $(QGIS_PROFILE_DIR)/python/plugins/$(PLUGIN)
	cd $(QGIS_PROFILE_DIR)/python/plugins && $(abspath $(PY)) -m zipfile -e $(abspath $(PLUGIN_ZIP)) .
	@echo "installed into $(QGIS_PROFILE_DIR)/python/plugins/$(PLUGIN); enable it in Plugins > Manage"

test-plugin:  ## only the QGIS plugin tests
	$(PY) -m pytest tests/plugin
