"""A fake OpenAI-compatible server for tests and benchmarks (aiohttp.web, no model).

    python -m llm.fake_server --port 9100 --tokens 20 --ttft-ms 200 --tokens-per-s 50

Chat answers are "tok1 tok2 ... tokN " streamed one token per SSE chunk. Failures can be
injected for every request (`--fail`), for the next few requests (`POST /_control`), or
by model name (`fake-500`, `fake-429`, `fake-reset`, `fake-stall` fail every time).
`POST /v1/moderations` flags texts containing a flag word (`--flag-word`, `set_flag_words`).
`run_in_thread()` starts one inside a test or benchmark process.
"""

from llm.fake_server.app import RunningFakeServer, create_app, run_in_thread
from llm.fake_server.chat import token_text
from llm.fake_server.embeddings import embedding_vector
from llm.fake_server.state import (
    MODEL_FAILURES,
    FailMode,
    FakeServerConfig,
    FakeServerState,
    FakeServerStats,
)

__all__ = [
    "MODEL_FAILURES",
    "FailMode",
    "FakeServerConfig",
    "FakeServerState",
    "FakeServerStats",
    "RunningFakeServer",
    "create_app",
    "embedding_vector",
    "run_in_thread",
    "token_text",
]
