"""README.md is a valid Hugging Face Space card, and its gradio version is the one we pin."""

import re

from conftest import REPO_ROOT
from huggingface_hub import SpaceCard


def pinned_version(package: str) -> str:
    text = (REPO_ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(package)}(?:\[[^\]]*\])?==(\S+)$", text, flags=re.MULTILINE)
    assert match, f"{package} is not pinned with == in requirements.txt"
    return match.group(1)


def test_readme_front_matter_is_a_space_card_for_this_app():
    card = SpaceCard.load(REPO_ROOT / "README.md")
    data = card.data
    assert data.sdk == "gradio"
    assert data.app_file == "app.py" and (REPO_ROOT / data.app_file).is_file()
    assert isinstance(data.python_version, str) and data.python_version.startswith("3.")
    assert data.license and data.title and data.emoji
    assert data.colorFrom in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert data.colorTo in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert len(data.short_description) <= 60
    assert "karpathy/tiny_shakespeare" in data.datasets


def test_space_sdk_version_equals_the_gradio_pin():
    assert SpaceCard.load(REPO_ROOT / "README.md").data.sdk_version == pinned_version("gradio")
