"""The semantic cache's similarity threshold, by measurement: hit rate and wrong-hit rate per
threshold, with the product's embedding model (``llm.embeddings.embedding_provider``).

    python -m bench.cache_threshold [--groups FILE] [--claims queries.jsonl]

Part A (``--groups``): a labelled set of questions, two of the same group being paraphrases (the
same answer serves both), two of different groups not: by default BANKING77's 3,080 test
questions in 77 intents (``bench/data/banking77``, CC BY 4.0), a CSV of ``text,category``; or
JSONL, one ``{"text": ..., "group": ...}`` per line. Questions are embedded as a turn embeds
them (``embed_query``: the int8 question model unless ``EMBEDDING_QUESTION_INT8=0``). Two views
per threshold t:

- lookups: each question against all the others as the cache (what a lookup does: the nearest
  entry, if >= t, and not refused by the product's lexical guard): hit rate, and the share of
  hits whose nearest is of another group;
- pairs (by group labels alone): the share of paraphrase pairs at cosine >= t, and the share of
  all pairs at >= t that are of different groups.

Intent labels are not paraphrase labels at the edges: BANKING77 has the same question under two
intents ("What are the fees for top-ups?" / "... top ups?"). ``--adjudicated`` (JSONL ``{"a",
"b", "same"}``, default ``bench/data/banking77/adjudicated_pairs.jsonl``) holds every pair of
different intents that a lookup served at >= 0.80 with the int8 question model, each judged by
reading both questions: ``same`` when one answer, written for either as asked, answers the other
in full (a question that asks for more, or for another case, is not the same). A lookup hit is
right when both questions share a group or the pair is judged the same; served pairs of
different groups that are not in the file are counted as wrong and reported as ``unreviewed``.
The default threshold is the lowest t whose wrong lookup hits are at most 1% of hits.

Part B (SciFact, always when the file is there): the 809 SciFact training claims
(``../shared/data/scifact/queries.jsonl``), all distinct questions, many on the same topics and
some the negation of another ("X increases Y" / "X decreases Y"): every pair at >= t would be a
wrong hit. Per threshold: the share of claims whose nearest other claim is >= t (a cache holding
all the others would answer it wrongly), and the closest pairs. Results go to
bench/results/cache_threshold.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.children import RESULTS
from bench.retrieval_eval import DEFAULT_DATA, read_jsonl

THRESHOLDS = [round(0.70 + 0.01 * n, 2) for n in range(26)]
MAX_WRONG_SHARE = 0.01
BANKING77 = Path(__file__).resolve().parent / "data" / "banking77" / "test.csv"
ADJUDICATED = BANKING77.with_name("adjudicated_pairs.jsonl")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_threshold")
    parser.add_argument(
        "--groups",
        type=Path,
        default=BANKING77,
        help="labelled questions: CSV (text,category) or JSONL (text, group)",
    )
    parser.add_argument("--adjudicated", type=Path, default=ADJUDICATED)
    parser.add_argument("--claims", type=Path, default=DEFAULT_DATA / "queries.jsonl")
    parser.add_argument("--output", type=Path, default=RESULTS / "cache_threshold.json")
    return parser.parse_args(argv)


def embed(texts: list[str]) -> np.ndarray:
    from llm.embeddings import embedding_provider

    provider = embedding_provider()
    vectors = np.array([provider.embed_query(text) for text in texts], dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def pair_view(similarity: np.ndarray, groups: np.ndarray, t: float) -> dict[str, Any]:
    upper = np.triu_indices(len(groups), k=1)
    sims, same = similarity[upper], (groups[:, None] == groups[None, :])[upper]
    above = sims >= t
    hits, wrong = int((above & same).sum()), int((above & ~same).sum())
    return {
        "paraphrase_pairs": int(same.sum()),
        "other_pairs": int((~same).sum()),
        "hit_rate": round(hits / max(int(same.sum()), 1), 4),
        "wrong_share_of_hits": round(wrong / max(hits + wrong, 1), 4),
        "wrong_hits": wrong,
    }


def nearest_others(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    masked = similarity.copy()
    np.fill_diagonal(masked, -1.0)
    nearest = masked.argmax(axis=1)
    return nearest, masked[np.arange(len(nearest)), nearest]


def guard_refuses(texts: list[str], nearest: np.ndarray) -> np.ndarray:
    """Where the product's lexical guard (``questions_conflict``) refuses the nearest."""
    from conversations.answer_cache import questions_conflict

    pairs = zip(texts, nearest, strict=True)
    return np.array([questions_conflict(text, texts[n]) for text, n in pairs])


def adjudicated_pairs(path: Path | None) -> dict[frozenset[str], bool]:
    if path is None or not path.exists():
        return {}
    return {frozenset((row["a"], row["b"])): bool(row["same"]) for row in read_jsonl(path)}


def lookup_view(
    similarity: np.ndarray,
    groups: np.ndarray,
    t: float,
    refused: np.ndarray,
    texts: list[str],
    judged: dict[frozenset[str], bool],
) -> dict[str, Any]:
    nearest, best = nearest_others(similarity)
    other_group = groups[nearest] != groups
    pair_of = [frozenset((texts[i], texts[int(n)])) for i, n in enumerate(nearest)]
    judged_same = np.array([judged.get(pair) is True for pair in pair_of])
    unjudged = np.array([pair not in judged for pair in pair_of])
    view = {}
    for name, served in (("unguarded", best >= t), ("guarded", (best >= t) & ~refused)):
        wrong = served & other_group & ~judged_same
        view[name] = {
            "hit_rate": round(float(served.mean()), 4),
            "wrong_share_of_hits": round(float(wrong.sum()) / max(int(served.sum()), 1), 4),
            "wrong_hits": int(wrong.sum()),
            "other_group_judged_same": int((served & other_group & judged_same).sum()),
            "unreviewed": int((served & other_group & unjudged).sum()),
        }
    return view


def labelled_questions(path: Path) -> tuple[list[str], list[str]]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    else:
        rows = [(row["text"], str(row["group"])) for row in read_jsonl(path)]
    return [" ".join(text.split()) for text, _ in rows], [label for _, label in rows]


def groups_part(path: Path, adjudicated: Path | None) -> dict[str, Any]:
    texts, names = labelled_questions(path)
    judged = adjudicated_pairs(adjudicated)
    labels = np.array(names)
    vectors = embed(texts)
    similarity = vectors @ vectors.T
    refused = guard_refuses(texts, nearest_others(similarity)[0])
    table = {
        str(t): {
            "pairs": pair_view(similarity, labels, t),
            "lookups": lookup_view(similarity, labels, t, refused, texts, judged),
        }
        for t in THRESHOLDS
    }
    meeting = [
        t
        for t in THRESHOLDS
        if table[str(t)]["lookups"]["guarded"]["wrong_share_of_hits"] <= MAX_WRONG_SHARE
    ]
    counts: dict[str, int] = defaultdict(int)
    for label in labels:
        counts[label] += 1
    return {
        "file": str(path),
        "adjudicated_pairs": {
            "file": str(adjudicated) if judged else None,
            "pairs": len(judged),
            "same": sum(judged.values()),
        },
        "questions": len(texts),
        "groups": len(counts),
        "per_threshold": table,
        "lowest_threshold_within_1pct_wrong": min(meeting) if meeting else None,
    }


def claims_part(path: Path) -> dict[str, Any]:
    from conversations.answer_cache import question_normalise, questions_conflict

    unique = {question_normalise(row["text"]): row["text"] for row in read_jsonl(path)}
    claims = sorted(unique.values())
    vectors = embed(claims)  # duplicates dropped: the same question twice is a right hit
    similarity = vectors @ vectors.T
    nearest_index, nearest = nearest_others(similarity)
    refused = guard_refuses(claims, nearest_index)
    np.fill_diagonal(similarity, -1.0)
    upper = np.triu_indices(len(claims), k=1)
    sims = similarity[upper]
    order = np.argsort(-sims)[:10]
    closest = [
        {
            "similarity": round(float(sims[k]), 4),
            "a": claims[upper[0][k]],
            "b": claims[upper[1][k]],
            "guard_refuses": questions_conflict(claims[upper[0][k]], claims[upper[1][k]]),
        }
        for k in order
    ]
    return {
        "claims": len(claims),
        "pairs": len(sims),
        "per_threshold": {
            str(t): {
                "claims_with_a_wrong_hit": round(float((nearest >= t).mean()), 4),
                "with_the_guard": round(float(((nearest >= t) & ~refused).mean()), 4),
                "pairs_at_or_above": int((sims >= t).sum()),
            }
            for t in THRESHOLDS
        },
        "closest_pairs": closest,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    import django

    django.setup()
    from django.conf import settings

    report: dict[str, Any] = {
        "model": settings.EMBEDDING_MODEL,
        "question_model_int8": settings.EMBEDDING_QUESTION_INT8,
        "default_threshold": settings.ANSWER_CACHE_THRESHOLD,
    }
    if args.groups.exists():
        report["groups"] = groups_part(args.groups, args.adjudicated)
    else:
        print(f"{args.groups} not found: part A (hit rate) skipped", file=sys.stderr)
    if args.claims.exists():
        report["scifact_claims"] = claims_part(args.claims)
    else:
        print(f"{args.claims} not found: part B skipped", file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
