"""Task metrics that judge what an app delivers rather than a tensor: OCR character accuracy (one edit distance for
the tests, the benchmarks and the quantization gate alike). Whitespace is not scored: PP-OCRv4's recogniser, like
rapidocr's own pipeline, mostly omits the spaces between words of Latin text."""
from __future__ import annotations


def edit_distance(a, b) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two strings (or id sequences)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_errors(read: str, truth: str) -> tuple[int, int]:
    """(character errors, characters) of `read` against `truth`, whitespace removed from both."""
    got, want = "".join(read.split()), "".join(truth.split())
    return edit_distance(got, want), len(want)


def char_accuracy(reads: list[str], truths: list[str]) -> float:
    """Percent of the truth's characters read right over pairs of (text read, true text)."""
    errors = chars = 0
    for read, truth in zip(reads, truths):
        e, n = char_errors(read, truth)
        errors, chars = errors + e, chars + n
    return 100.0 * (1 - errors / chars) if chars else 0.0
