"""The ``auto`` model: pick a cheap or a strong model for one turn (pure functions, no I/O).

The rules, first match wins:

1. ``single_model``: the user's plan leaves one model (or no prices tell models apart).
2. The request asks for the strong model: ``long`` (a long question), ``code`` (a code cue
   pattern matches), ``reasoning`` (multi-step reasoning cue words), ``long`` (a long context
   with a short question), ``sources``
   (retrieval found passages to synthesise, when the policy says so), ``no_sources`` (retrieval
   found nothing and the policy wants the strong model to answer from its own knowledge).
3. ``budget``: the strong model was wanted, but the user has used the policy's fraction of their
   plan's cap: the cheap one answers (``detail["wanted"]`` keeps what was wanted).
4. ``simple``: nothing asked for the strong model.

Inputs are plain values (``RouteRequest``, ``RoutePolicy``, ``ModelPair``) so the decision costs
microseconds and is tested without a database; ``conversations.turn_routing`` gathers them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

AUTO = "auto"

SIMPLE = "simple"
LONG = "long"
CODE = "code"
REASONING = "reasoning"
SOURCES = "sources"
NO_SOURCES = "no_sources"
BUDGET = "budget"
SINGLE_MODEL = "single_model"
REASONS = (SIMPLE, LONG, CODE, REASONING, SOURCES, NO_SOURCES, BUDGET, SINGLE_MODEL)

MAX_CUES = 5  # matched cues kept in the detail, enough to explain a decision
SCAN_CHARS = 4000  # the most of a question searched for cues (bounds the decision's cost)

DEFAULT_CODE_PATTERNS = (
    r"```",
    r"\b(def|fn|func|function)\s+\w+\s*\(",
    r"\bclass\s+\w+\s*[:({]",
    r"^\s*(import\s+[\w.]+\s*$|from\s+[\w.]+\s+import\b|#include\b|using\s+[\w.]+;)",
    r"\b(const|let|var)\s+\w+\s*=",
    r"\bSELECT\b.+\bFROM\b",
    r"Traceback \(most recent call last\)|\bat [\w.$]+\([\w.]+:\d+\)",
    r"\b[A-Z]\w*(Error|Exception)\b",
    r"[;{}]\s*$",
    r"(?i:\b(regex|regexp|stack trace|segfault|null pointer|refactor|unit tests?|debug)\b)",
)
DEFAULT_REASONING_CUES = (
    "step by step",
    "explain why",
    "compare",
    "comparison",
    "trade-off",
    "tradeoff",
    "pros and cons",
    "prove",
    "derive",
    "analyze",
    "analyse",
    "evaluate",
    "calculate",
    "estimate",
    "design a",
    "strategy",
    "implications",
    "justify",
    "difference between",
    "what would happen if",
)


@dataclass(frozen=True)
class RoutePolicy:
    """The staff's rules as plain values (``RoutingPolicy`` compiled by ``routing_policy``)."""

    long_question_chars: int = 1200
    long_context_tokens: int = 3000
    code_patterns: re.Pattern[str] | None = None
    reasoning_cues: re.Pattern[str] | None = None
    reasoning_min_cues: int = 1
    sources_prefer_strong: bool = True
    no_sources_prefer_strong: bool = False
    budget_prefer_cheap_at: float = 0.8
    cheap_model: str = ""
    strong_model: str = ""
    name: str = "built-in"


@dataclass(frozen=True)
class RouteRequest:
    question: str
    context_tokens: int  # the whole prompt's estimate: history, sources, question
    has_sources: bool  # retrieval found passages for this question
    budget_used: float = 0.0  # the larger of the plan's token and cost fractions used, 0..1+


@dataclass(frozen=True)
class ModelPair:
    cheap: str
    strong: str


@dataclass(frozen=True)
class RouteDecision:
    model: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


def cues_compile(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One multiline regular expression matching any of ``patterns`` (None when empty)."""
    kept = [p for p in patterns if p.strip()]
    if not kept:
        return None
    return re.compile("|".join(f"(?:{p})" for p in kept), re.MULTILINE)


def words_compile(words: Sequence[str]) -> re.Pattern[str] | None:
    """Case-insensitive whole-word phrases (spaces match any run of whitespace)."""
    kept = [w.strip() for w in words if w.strip()]
    if not kept:
        return None
    phrases = [r"\s+".join(re.escape(part) for part in w.split()) for w in kept]
    return re.compile(r"\b(?:" + "|".join(phrases) + r")\b", re.IGNORECASE)


DEFAULT_POLICY = RoutePolicy(
    code_patterns=cues_compile(DEFAULT_CODE_PATTERNS),
    reasoning_cues=words_compile(DEFAULT_REASONING_CUES),
)


def route_pair(
    *, allowed: Sequence[str], prices: Mapping[str, int], policy: RoutePolicy = DEFAULT_POLICY
) -> ModelPair | None:
    """The cheap and the strong model among ``allowed`` (None when nothing is allowed).

    ``prices`` maps enabled catalogue models to a comparable price (input + output per million
    tokens): the cheapest priced model is the cheap one, the most expensive the strong one
    (ties broken by name). A policy's named model wins when the plan allows it. Without prices
    there is nothing to tell models apart: the plan's default answers alone.
    """
    if not allowed:
        return None
    priced = sorted((prices[m], m) for m in allowed if m in prices)
    cheap = priced[0][1] if priced else allowed[0]
    strong = min(priced, key=lambda p: (-p[0], p[1]))[1] if priced else cheap
    if policy.cheap_model in allowed:
        cheap = policy.cheap_model
    if policy.strong_model in allowed:
        strong = policy.strong_model
    return ModelPair(cheap=cheap, strong=strong)


def cues_found(pattern: re.Pattern[str] | None, text: str) -> list[str]:
    if pattern is None:
        return []
    found: list[str] = []
    for match in pattern.finditer(text):
        cue = match.group(0).strip()[:40]
        if cue and cue.lower() not in (f.lower() for f in found):
            found.append(cue)
        if len(found) >= MAX_CUES:
            break
    return found


def strong_reason(request: RouteRequest, policy: RoutePolicy) -> tuple[str, dict[str, Any]]:
    """Why the request wants the strong model, with the evidence; ``SIMPLE`` when it does not.

    A long question is not scanned for cues: it goes to the strong model anyway, and scanning
    costs about a microsecond per character. Shorter ones are scanned up to ``SCAN_CHARS``.
    """
    if len(request.question) >= policy.long_question_chars:
        return LONG, {"over": "question_chars"}
    text = request.question[:SCAN_CHARS]
    code = cues_found(policy.code_patterns, text)
    if code:
        return CODE, {"cues": code}
    reasoning = cues_found(policy.reasoning_cues, text)
    if reasoning and len(reasoning) >= policy.reasoning_min_cues:
        return REASONING, {"cues": reasoning}
    if request.context_tokens >= policy.long_context_tokens:
        return LONG, {"over": "context_tokens"}
    if request.has_sources and policy.sources_prefer_strong:
        return SOURCES, {}
    if not request.has_sources and policy.no_sources_prefer_strong:
        return NO_SOURCES, {}
    return SIMPLE, {}


def route_decide(*, request: RouteRequest, policy: RoutePolicy, pair: ModelPair) -> RouteDecision:
    """The model for one ``auto`` turn, the reason (one of ``REASONS``) and its evidence."""
    detail: dict[str, Any] = {
        "question_chars": len(request.question),
        "context_tokens": request.context_tokens,
        "sources": request.has_sources,
        "budget_used": round(request.budget_used, 4),
        "cheap": pair.cheap,
        "strong": pair.strong,
        "policy": policy.name,
    }
    if pair.cheap == pair.strong:
        return RouteDecision(pair.cheap, SINGLE_MODEL, detail)
    reason, evidence = strong_reason(request, policy)
    detail.update(evidence)
    if reason == SIMPLE:
        return RouteDecision(pair.cheap, SIMPLE, detail)
    if policy.budget_prefer_cheap_at < 1 and request.budget_used >= policy.budget_prefer_cheap_at:
        detail["wanted"] = reason
        return RouteDecision(pair.cheap, BUDGET, detail)
    return RouteDecision(pair.strong, reason, detail)
