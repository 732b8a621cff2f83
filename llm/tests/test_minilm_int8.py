"""The int8 question model: made once from the packaged model, reused, close to it, and never in
the way (a failed build falls back to the packaged model)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from llm.embeddings import embedding_provider
from llm.minilm import MiniLMProvider, packaged_model
from llm.minilm_int8 import model_digest


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def int8(model_dir: Path) -> MiniLMProvider:
    return MiniLMProvider(threads=1, batch_size=4, question_model_dir=model_dir)


def test_the_question_model_is_built_once_and_reused(int8: MiniLMProvider, model_dir: Path) -> None:
    built = int8.question_model()
    assert built.parent == model_dir and built.name.startswith("minilm-question-")
    stamp = built.stat()
    again = MiniLMProvider(threads=1, question_model_dir=model_dir).question_model()
    assert again == built
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)
    assert [p.name for p in model_dir.iterdir()] == [built.name]  # no build folder left behind


def test_the_question_model_multiplies_in_int8(int8: MiniLMProvider) -> None:
    ops = {node.op_type for node in onnx.load(str(int8.question_model())).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    packaged = {node.op_type for node in onnx.load(str(packaged_model())).graph.node}
    assert "MatMulInteger" not in packaged


def test_question_vectors_stay_close_to_chunk_vectors(int8: MiniLMProvider) -> None:
    texts = [
        "How do I reset my password?",
        "Vitamin D deficiency is linked to a higher risk of tuberculosis.",
        "What is the refund policy for orders delivered late?",
    ]
    chunks = int8.embed(texts)
    for text, chunk in zip(texts, chunks, strict=True):
        question = int8.embed_query(text)
        assert len(question) == 384
        assert np.linalg.norm(question) == pytest.approx(1.0, abs=1e-5)
        assert 0.98 <= float(np.dot(question, chunk)) < 0.99999  # close, but another model


def test_a_question_finds_its_paraphrase_among_chunks(int8: MiniLMProvider) -> None:
    paraphrase, unrelated = int8.embed(
        ["To change a forgotten password, open Settings and choose Reset.", "Cats sleep a lot."]
    )
    question = int8.embed_query("How do I reset my password?")
    assert np.dot(question, paraphrase) > np.dot(question, unrelated) + 0.3


def test_a_failed_build_falls_back_to_the_packaged_model(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the model folder should be")
    provider = MiniLMProvider(threads=1, question_model_dir=blocker)
    assert provider.question_model() == packaged_model()
    text = "How do I reset my password?"
    assert np.allclose(provider.embed_query(text), provider.embed([text])[0], atol=1e-5)


def test_the_model_name_follows_the_source_file(tmp_path: Path) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copyfile(packaged_model(), copy)
    assert model_digest(copy) == model_digest(packaged_model())
    with copy.open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    assert model_digest(copy) != model_digest(packaged_model())


def test_settings_turn_the_int8_question_model_off(settings: Any, model_dir: Path) -> None:
    embedding_provider.cache_clear()
    try:
        settings.EMBEDDING_PROVIDER = "minilm"
        settings.EMBEDDING_QUESTION_INT8 = False
        assert embedding_provider().question_model() == packaged_model()  # type: ignore[attr-defined]
        settings.EMBEDDING_QUESTION_INT8 = True
        settings.EMBEDDING_MODEL_DIR = str(model_dir)
        assert embedding_provider().question_model().parent == model_dir  # type: ignore[attr-defined]
    finally:
        embedding_provider.cache_clear()
