"""The ``auto`` model's decision: every reason, the pair of models, the policy's knobs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conversations.model_routing import (
    BUDGET,
    CODE,
    DEFAULT_POLICY,
    LONG,
    NO_SOURCES,
    REASONING,
    SIMPLE,
    SINGLE_MODEL,
    SOURCES,
    ModelPair,
    RouteDecision,
    RoutePolicy,
    RouteRequest,
    cues_compile,
    route_decide,
    route_pair,
    words_compile,
)

PAIR = ModelPair(cheap="small", strong="large")


def decide(
    question: str = "What is the capital of France?",
    *,
    context_tokens: int = 100,
    has_sources: bool = False,
    budget_used: float = 0.0,
    policy: RoutePolicy = DEFAULT_POLICY,
    pair: ModelPair = PAIR,
) -> RouteDecision:
    request = RouteRequest(question, context_tokens, has_sources, budget_used)
    return route_decide(request=request, policy=policy, pair=pair)


def test_a_short_plain_question_goes_to_the_cheap_model():
    decision = decide()
    assert (decision.model, decision.reason) == ("small", SIMPLE)
    assert decision.detail["cheap"] == "small" and decision.detail["strong"] == "large"


def test_one_model_answers_alone_whatever_the_question():
    decision = decide("```python\nprint(1)\n```", pair=ModelPair("only", "only"))
    assert (decision.model, decision.reason) == ("only", SINGLE_MODEL)


@pytest.mark.parametrize(
    "question",
    [
        "Why does this fail?\n```\nx = 1\n```",
        "def parse(text):\n    return text.split()",
        "class Parser(Base):\n    pass",
        "import numpy",
        "from collections import deque",
        "const total = items.length",
        "SELECT name FROM users WHERE id = 3",
        'Traceback (most recent call last):\n  File "a.py", line 1',
        "I get a KeyError when I open the file",
        "for (;;) {",
        "How do I write a regex for dates?",
    ],
)
def test_code_goes_to_the_strong_model(question: str):
    decision = decide(question)
    assert (decision.model, decision.reason) == ("large", CODE)
    assert decision.detail["cues"]


@pytest.mark.parametrize(
    "question",
    [
        "Let me know the opening hours of the library.",
        "What is the function of the liver?",
        "How do I return an item I bought?",
        "Which class should I take next term?",
        "What are the import duties on cheese?",
    ],
)
def test_everyday_words_that_look_like_code_keywords_stay_cheap(question: str):
    assert decide(question).reason == SIMPLE


def test_reasoning_cues_go_to_the_strong_model():
    decision = decide("Compare the two offers and explain why one is better, step by step.")
    assert (decision.model, decision.reason) == ("large", REASONING)
    assert {"Compare", "explain why", "step by step"} <= set(decision.detail["cues"])


def test_reasoning_cues_match_whole_words_only():
    assert decide("The comparator in my kitchen is broken").reason == SIMPLE


def test_the_policy_can_require_several_reasoning_cues():
    policy = replace(DEFAULT_POLICY, reasoning_min_cues=2)
    assert decide("Compare these two phones.", policy=policy).reason == SIMPLE
    assert decide("Compare them step by step.", policy=policy).reason == REASONING


def test_a_long_question_goes_to_the_strong_model():
    decision = decide("word " * 300)
    assert (decision.model, decision.reason) == ("large", LONG)
    assert decision.detail["over"] == "question_chars"


def test_a_long_context_goes_to_the_strong_model():
    decision = decide(context_tokens=5000)
    assert (decision.reason, decision.detail["over"]) == (LONG, "context_tokens")


def test_the_long_thresholds_come_from_the_policy():
    policy = replace(DEFAULT_POLICY, long_question_chars=20, long_context_tokens=10**6)
    assert decide("a question of some thirty characters", policy=policy).reason == LONG
    assert decide("Hi?", context_tokens=5000, policy=policy).reason == SIMPLE


def test_found_sources_go_to_the_strong_model():
    decision = decide(has_sources=True)
    assert (decision.model, decision.reason) == ("large", SOURCES)
    assert decision.detail["sources"] is True


def test_found_sources_stay_cheap_when_the_policy_says_so():
    policy = replace(DEFAULT_POLICY, sources_prefer_strong=False)
    assert decide(has_sources=True, policy=policy).reason == SIMPLE


def test_no_sources_goes_to_the_strong_model_only_when_the_policy_says_so():
    assert decide(has_sources=False).reason == SIMPLE
    policy = replace(DEFAULT_POLICY, no_sources_prefer_strong=True)
    decision = decide(has_sources=False, policy=policy)
    assert (decision.model, decision.reason) == ("large", NO_SOURCES)


def test_near_the_cap_the_cheap_model_answers_what_wanted_the_strong_one():
    decision = decide("def f(x):\n    return x", budget_used=0.85)
    assert (decision.model, decision.reason) == ("small", BUDGET)
    assert decision.detail["wanted"] == CODE
    assert decision.detail["budget_used"] == 0.85


def test_below_the_budget_threshold_the_strong_model_still_answers():
    assert decide("def f(x):\n    return x", budget_used=0.79).reason == CODE


def test_a_simple_question_near_the_cap_is_simple_not_budget():
    assert decide(budget_used=0.99).reason == SIMPLE


def test_a_budget_threshold_of_one_never_prefers_the_cheap_model():
    policy = replace(DEFAULT_POLICY, budget_prefer_cheap_at=1.0)
    assert decide(has_sources=True, budget_used=1.5, policy=policy).reason == SOURCES


def test_code_wins_over_reasoning_a_long_context_and_sources():
    question = "Explain why this fails, step by step:\ndef f():\n    pass"
    assert decide(question, context_tokens=9000, has_sources=True).reason == CODE


def test_a_long_question_is_long_without_being_scanned_for_cues():
    question = "def f():\n    pass\n" * 100
    decision = decide(question)
    assert (decision.model, decision.reason) == ("large", LONG)
    assert "cues" not in decision.detail


def test_only_the_start_of_a_very_long_question_is_scanned():
    policy = replace(DEFAULT_POLICY, long_question_chars=10**6)
    late_code = "word " * 1000 + "\ndef f(x):\n    return x"
    assert decide(late_code, policy=policy).reason == SIMPLE
    assert decide(late_code[-40:] + " word" * 1000, policy=policy).reason == CODE


def test_empty_cue_lists_switch_those_rules_off():
    policy = replace(DEFAULT_POLICY, code_patterns=cues_compile([]), reasoning_cues=None)
    assert decide("def f(x):\n    return x", policy=policy).reason == SIMPLE
    assert words_compile(["", "  "]) is None


def test_staff_patterns_and_words_are_used_as_given():
    policy = replace(
        DEFAULT_POLICY,
        code_patterns=cues_compile([r"\bCOBOL\b"]),
        reasoning_cues=words_compile(["think   hard"]),
    )
    assert decide("Is COBOL still used?", policy=policy).reason == CODE
    assert decide("Think hard about this", policy=policy).reason == REASONING


def test_the_pair_is_the_cheapest_and_the_most_expensive_allowed_model():
    prices = {"mini": 750, "large": 12_500, "mid": 3_000, "excluded": 90_000}
    pair = route_pair(allowed=["mid", "mini", "large"], prices=prices)
    assert pair == ModelPair(cheap="mini", strong="large")


def test_the_pair_breaks_price_ties_by_name():
    pair = route_pair(allowed=["b", "a", "c", "d"], prices={"a": 5, "b": 5, "c": 9, "d": 9})
    assert pair == ModelPair(cheap="a", strong="c")


def test_without_prices_the_plans_default_model_answers_alone():
    pair = route_pair(allowed=["first", "second"], prices={})
    assert pair == ModelPair(cheap="first", strong="first")
    assert route_pair(allowed=[], prices={"x": 1}) is None


def test_one_priced_model_among_unpriced_ones_makes_a_single_model_pair():
    assert route_pair(allowed=["a", "b"], prices={"b": 10}) == ModelPair("b", "b")


def test_the_policys_named_models_win_when_the_plan_allows_them():
    prices = {"mini": 1, "mid": 5, "large": 9}
    policy = replace(DEFAULT_POLICY, cheap_model="mid", strong_model="not-allowed")
    pair = route_pair(allowed=["mini", "mid", "large"], prices=prices, policy=policy)
    assert pair == ModelPair(cheap="mid", strong="large")


def test_the_detail_explains_the_decision_in_json_values():
    import json

    decision = decide("Compare A and B", context_tokens=42, has_sources=True, budget_used=0.123456)
    detail = json.loads(json.dumps(decision.detail))
    assert detail["question_chars"] == len("Compare A and B")
    assert detail["context_tokens"] == 42
    assert detail["budget_used"] == 0.1235
    assert detail["policy"] == DEFAULT_POLICY.name
