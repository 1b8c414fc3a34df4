"""Every registry entry is complete and builds (random weights) into the architecture it names."""
from __future__ import annotations

import pytest

from senclip.models.registry import get_model_spec, list_models

FORMATS = {"openai-state-dict", "open_clip"}


@pytest.mark.parametrize("model_id", list_models())
def test_registry_entry_is_complete(model_id):
    import open_clip

    spec = get_model_spec(model_id)
    assert spec.arch in open_clip.list_models()
    assert spec.format in FORMATS
    assert len(spec.preprocess.mean) == len(spec.preprocess.std) == 3 and spec.preprocess.size == 224
    assert spec.untrained or (spec.source and spec.source.hf_repo and spec.source.filename) or spec.source.url
    if not spec.untrained:
        assert spec.citation and spec.license
    if spec.id.startswith("senclip-"):
        assert spec.preprocess.mean == (0.347, 0.376, 0.296)


@pytest.mark.parametrize("arch", sorted({get_model_spec(m).arch for m in list_models()}))
def test_each_architecture_builds_and_saves_in_release_format(arch, tmp_path):
    """Random full-size weights in the release format round-trip: the architecture is re-inferred
    from the tensor shapes, as it will be from the real files."""
    from senclip.models.checkpoints import build_clip, infer_arch, read_state_dict, save_openai_state_dict

    model = build_clip(None, arch)
    path = save_openai_state_dict(model, tmp_path / "release.ckpt")
    assert infer_arch(read_state_dict(path)) == arch


def test_unknown_model_names_the_choices():
    from senclip.core.errors import InputError

    with pytest.raises(InputError, match="senclip-vitb32-avgpool"):
        get_model_spec("senclip-vitl14")


def test_backend_auto_is_torch_where_installed_else_onnx(monkeypatch):
    """--backend auto (the default of the CLI, the API and the plugin's menus) runs torch where it is
    installed and ONNX Runtime on the light install; explicit choices are taken as asked."""
    from senclip.core.choices import default
    from senclip.models import loading

    assert default("backend") == "auto"
    monkeypatch.setattr(loading, "_has_torch", lambda: True)
    assert loading.resolve_backend("auto") == "torch"
    monkeypatch.setattr(loading, "_has_torch", lambda: False)
    assert loading.resolve_backend("auto") == "onnx"
    assert loading.resolve_backend("torch") == "torch" and loading.resolve_backend("onnx") == "onnx"
