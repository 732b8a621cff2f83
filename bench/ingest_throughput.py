"""Ingestion throughput: extract -> chunk -> embed over a real multi-format corpus.

    .venv/bin/python -m bench.ingest_throughput [--limit N] [--embed-sample 512] [--seed 1]
        [--no-debian] [--corpus DIR ...]

The corpus is shared/data/docs-formats/ (every file, edge cases included) plus the Debian
documentation packages python3.11-doc and postgresql-doc-15 (their HTML and text files),
downloaded once with `apt-get download` into .data/bench-cache/ and unpacked there with
`dpkg -x` (never installed). Extraction and chunking run over every selected document;
embedding runs over a seeded random sample of the chunks (MiniLM reads about 14 chunks/s
on 2 idle cores, so the whole corpus would take hours), and the overall rate is projected
from the three measured per-item costs. Prints JSON and writes
bench/results/ingest_throughput.json. Method and results: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.children import RESULTS, ROOT

CACHE = ROOT / ".data" / "bench-cache"
DEBIAN_PACKAGES = ("python3.11-doc", "postgresql-doc-15")
DEBIAN_SUFFIXES = {".html", ".htm", ".txt", ".md", ".rst", ".pdf"}


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    import django

    django.setup()


def debian_corpus() -> Path | None:
    """The unpacked packages under .data/bench-cache/debian/ (downloaded if missing)."""
    root = CACHE / "debian"
    marker = root / ".unpacked"
    if marker.exists():
        return root
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in DEBIAN_PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        result = subprocess.run(
            ["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True
        )
        if result.returncode != 0:
            print(
                f"apt-get download failed, Debian docs skipped:\n{result.stderr}", file=sys.stderr
            )
            return None
    root.mkdir(parents=True, exist_ok=True)
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    marker.touch()
    return root


def corpus_files(args: argparse.Namespace) -> list[Path]:
    files = [p for base in args.corpus for p in sorted(base.rglob("*")) if p.is_file()]
    files = [p for p in files if "test_evaluate_files" not in p.parts]
    debian = None if args.no_debian else debian_corpus()
    if debian is not None:
        found = sorted(p for p in debian.rglob("*") if p.is_file())
        files += [p for p in found if p.suffix.lower() in DEBIAN_SUFFIXES]
    if args.limit and args.limit < len(files):
        files = sorted(random.Random(args.seed).sample(files, args.limit))
    return files


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the extraction forks)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Stage:
    """Wall and CPU time of one stage. On a shared machine the wall rate depends on what
    else runs; items per CPU second is what the stage would reach on a core of its own."""

    seconds: float = 0.0
    cpu: float = 0.0
    items: int = 0
    per_item_ms: list[float] = field(default_factory=list)

    def add(self, seconds: float, cpu: float, items: int = 1) -> None:
        self.seconds += seconds
        self.cpu += cpu
        self.items += items
        self.per_item_ms.append(seconds * 1000)

    def report(self, unit: str) -> dict[str, Any]:
        per = sorted(self.per_item_ms)
        return {
            unit: self.items,
            "seconds": round(self.seconds, 2),
            f"{unit}_per_s": round(self.items / self.seconds, 2) if self.seconds else None,
            "cpu_seconds": round(self.cpu, 2),
            f"{unit}_per_cpu_s": round(self.items / self.cpu, 2) if self.cpu else None,
            "median_ms_per_document": round(statistics.median(per), 2) if per else None,
        }


class Timer:
    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = cpu_seconds() - self.cpu


def run(args: argparse.Namespace) -> dict[str, Any]:
    from knowledge.chunking import chunks_make
    from knowledge.extraction import ExtractionError, document_extract
    from llm.embeddings import embedding_provider

    provider = embedding_provider()
    files = corpus_files(args)
    extract, chunk = Stage(), Stage()
    failures: Counter[str] = Counter()
    types: Counter[str] = Counter()
    texts: list[str] = []
    total_bytes = sum(p.stat().st_size for p in files)
    for path in files:
        with Timer() as timer:
            try:
                extracted = document_extract(path=path)
            except ExtractionError as error:
                failures[error.code] += 1
                extracted = None
        extract.add(timer.wall, timer.cpu)
        if extracted is None:
            continue
        types[extracted.media_type] += 1
        with Timer() as timer:
            drafts = chunks_make(
                extracted=extracted,
                count_tokens=provider.count_tokens,
                max_tokens=provider.max_tokens,
            )
        chunk.add(timer.wall, timer.cpu, len(drafts))
        texts += [d.text for d in drafts]
    embed = embed_sample(provider, texts, args)
    return summary(files, total_bytes, extract, chunk, embed, failures, types, texts, provider)


def embed_sample(provider: Any, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    sample = random.Random(args.seed).sample(texts, min(args.embed_sample, len(texts)))
    provider.embed(sample[:4])  # warm-up: the first run of an onnxruntime session allocates
    with Timer() as timer:
        provider.embed(sample)
    seconds = timer.wall
    return {
        "chunks": len(sample),
        "seconds": round(seconds, 2),
        "chunks_per_s": round(len(sample) / seconds, 2) if seconds else None,
        "cpu_seconds": round(timer.cpu, 2),  # all onnxruntime threads
        "chunks_per_cpu_s": round(len(sample) / timer.cpu, 2) if timer.cpu else None,
        "sampling": f"{len(sample)} chunks drawn uniformly (seed {args.seed}) from all chunks",
    }


def summary(
    files: list[Path],
    total_bytes: int,
    extract: Stage,
    chunk: Stage,
    embed: dict[str, Any],
    failures: Counter[str],
    types: Counter[str],
    texts: list[str],
    provider: Any,
) -> dict[str, Any]:
    embed_s_per_chunk = embed["seconds"] / embed["chunks"] if embed["chunks"] else 0.0
    projected = extract.seconds + chunk.seconds + embed_s_per_chunk * len(texts)
    return {
        "corpus": {
            "documents": len(files),
            "megabytes": round(total_bytes / 1e6, 1),
            "extracted_by_media_type": dict(types.most_common()),
        },
        "extract": {**extract.report("documents"), "failures_by_reason": dict(failures)},
        "chunk": {**chunk.report("chunks"), "documents": len(chunk.per_item_ms)},
        "embed": {
            **embed,
            "provider": provider.name,
            "batch_size": _setting("EMBEDDING_BATCH_SIZE"),
            "threads": _setting("EMBEDDING_THREADS"),
        },
        "overall_projected": {
            "seconds": round(projected, 1),
            "documents_per_s": round(len(files) / projected, 3) if projected else None,
            "chunks_per_s": round(len(texts) / projected, 2) if projected else None,
            "embed_share": round(embed_s_per_chunk * len(texts) / projected, 3)
            if projected
            else None,
        },
        "isolation_overhead_ms": isolation_overhead(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }


def isolation_overhead(runs: int = 30) -> dict[str, float]:
    """Median cost of parsing in a forked child instead of in-process (a trivial parse)."""
    from knowledge.extraction.isolation import run_isolated

    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run_isolated(lambda: None, max_seconds=30, max_memory_bytes=2 << 30)
        timings.append((time.perf_counter() - started) * 1000)
    return {"fork_median_ms": round(statistics.median(timings), 2), "runs": runs}


def _setting(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_corpus = ROOT.parent / "shared" / "data" / "docs-formats"
    parser.add_argument("--corpus", type=Path, nargs="*", default=[default_corpus])
    parser.add_argument("--no-debian", action="store_true", help="only the --corpus folders")
    parser.add_argument("--limit", type=int, default=0, help="a seeded sample of N documents")
    parser.add_argument("--embed-sample", type=int, default=512, help="chunks to embed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS / "ingest_throughput.json")
    args = parser.parse_args()
    args.corpus = [c for c in args.corpus if c.is_dir()]
    django_setup()
    output = {"args": {k: str(v) for k, v in vars(args).items()}, **run(args)}
    text = json.dumps(output, indent=2)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
